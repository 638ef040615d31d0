// docs/fetch.md shows, verbatim, the apps that npm run test:runtimes runs on
// Workers, Deno, Bun and Node: a snippet cannot drift from what was tested.
import { readFile, readdir } from 'node:fs/promises'
import { test } from 'tap'

const apps = new URL('./runtimes/apps/', import.meta.url)

test('every runtime snippet in docs/fetch.md is the code the runtime suite runs', async (t) => {
  const docs = await readFile(new URL('../docs/fetch.md', import.meta.url), 'utf8')
  const regions: string[] = []
  for (const file of (await readdir(apps)).filter((name) => name.endsWith('.js'))) {
    const source = await readFile(new URL(file, apps), 'utf8')
    for (const match of source.matchAll(/\/\/ docs:start (\S+)\n([\s\S]*?)\/\/ docs:end\n/g)) {
      regions.push(match[1] as string)
      t.ok(docs.includes('```js\n' + (match[2] as string) + '```'), `docs/fetch.md shows ${file} (${match[1] as string}) as it is`)
    }
  }
  t.same(regions.sort(), ['bun', 'deno', 'hono-worker', 'next-route', 'worker'], 'one snippet per runtime')
})
