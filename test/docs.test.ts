import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { join, posix } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { MAX_IN_FLIGHT } from '../src/postgres/group-commit.js'

// What a reader of the published docs meets: links that lead somewhere in the
// package they installed, and snippets and examples that keep working when they
// switch to a durable inbox.

const root = fileURLToPath(new URL('../', import.meta.url))
const read = (path: string): string => readFileSync(join(root, path), 'utf8')

/** The files `npm pack` would ship (no scripts run: the file list is what matters). */
function packedFiles (): Set<string> {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  const out = execFileSync(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' })
  return new Set((JSON.parse(out) as Array<{ files: Array<{ path: string }> }>)[0]?.files.map((file) => file.path) ?? [])
}

/** Markdown link targets outside fenced code blocks and inline code. */
function linkTargets (markdown: string): string[] {
  const prose = markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '')
  return [...prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((match) => match[1] as string)
}

t.test('issue 21.10: every relative link in a shipped doc resolves inside the package', async (t) => {
  const shipped = packedFiles()
  const docs = [...shipped].filter((path) => path.endsWith('.md'))
  t.ok(docs.includes('README.md') && docs.includes('docs/deployment.md') && docs.includes('docs/getting-started.md'), 'the docs are shipped')
  const broken: string[] = []
  for (const doc of docs) {
    for (const target of linkTargets(read(doc))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('#')) continue
      const path = posix.normalize(posix.join(posix.dirname(doc), decodeURIComponent(target.replace(/[#?].*$/, ''))))
      const found = shipped.has(path) || [...shipped].some((file) => file.startsWith(path.endsWith('/') ? path : `${path}/`))
      if (!found) broken.push(`${doc}: ${target}`)
    }
  }
  t.same(broken, [], 'link to files that are not shipped with an absolute https://github.com/sir-giving/sir-webhooks/blob/main/… URL')
})

/** Every `.on(` / `.onAny(` call whose handler is an arrow function and that passes no `{ name }`. */
function unnamedHandlers (source: string): string[] {
  const found: string[] = []
  for (const match of source.matchAll(/\.(on|onAny)\(/g)) {
    let depth = 0
    let end = match.index
    for (; end < source.length; end += 1) {
      if (source[end] === '(') depth += 1
      else if (source[end] === ')' && --depth === 0) break
    }
    const call = source.slice(match.index, end + 1)
    const handler = match[1] === 'onAny' ? call.slice('.onAny('.length) : call.replace(/^\.on\(\s*(\[[^\]]*\]|'[^']*'|"[^"]*"|\w+)\s*,/, '')
    if (handler === call) continue // not a handler registration (e.g. server.on(event) with no type)
    if (/^\s*(async\s*)?(\([^)]*\)|\w+)\s*=>/.test(handler) && !/\bname\s*:/.test(call)) found.push(call.split('\n')[0] as string)
  }
  return found
}

t.test('issue 21.8: the README, the guides and every example name their handlers', async (t) => {
  const examples = (dir: string): string[] => readdirSync(join(root, dir), { withFileTypes: true })
    .flatMap((entry) => entry.isDirectory() ? examples(join(dir, entry.name)) : entry.name.endsWith('.js') ? [join(dir, entry.name)] : [])
  const files = ['README.md', ...readdirSync(join(root, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`), ...examples('examples')]
  for (const file of files) {
    const source = read(file).replace(/(server|child|process|request|response|socket|stream|payload)\.on\(/g, '')
    t.same(unnamedHandlers(source), [], `${file}: every handler is a named function or has { name }`)
    // Naming a handler after the function it calls would make it call itself.
    const selfCalling = [...source.matchAll(/\.(?:on|onAny)\([^\n]*?async function (\w+) \([^)]*\) \{\n?([^}]*)/g)]
      .filter((match) => new RegExp(`\\b${match[1] as string}\\(`).test(match[2] as string)).map((match) => match[1])
    t.same(selfCalling, [], `${file}: no handler named after the function it calls`)
  }
  t.same(unnamedHandlers("webhooks.on('action.completed', async (event) => {})\nwebhooks.onAny((event) => 1)"), ["webhooks.on('action.completed', async (event) => {})".slice(8), '.onAny((event) => 1)'], 'the check finds arrow handlers')
})

t.test('issue 20.12: the README quick start and the Fastify examples set requestTimeout', async (t) => {
  const quickStart = /## Quick start \(Fastify\)\n[^#]*?```ts\n([\s\S]*?)```/.exec(read('README.md'))?.[1] ?? ''
  t.match(quickStart, /Fastify\(\{[^)]*requestTimeout: \d/, 'README quick start')
  for (const example of ['examples/fastify/server.js', 'examples/postgres/server.js', 'examples/sqlite/server.js']) {
    t.match(read(example), /Fastify\(\{[\s\S]*?requestTimeout: \d[\d_]*/, example)
  }
})

t.test('issue 21.10: docs/deployment.md sizes the Postgres pool as the inbox does', async (t) => {
  const deployment = read('docs/deployment.md')
  t.match(deployment, `**Pool size: \`concurrency\` + ${MAX_IN_FLIGHT + 1}.**`, 'the size the warning asks for and the inbox\'s own pool has')
  t.match(deployment, `With fewer than\n\`concurrency\` + ${MAX_IN_FLIGHT} the inbox runs fewer events at once`, 'the threshold of the warning')
  t.notMatch(deployment, /\+ 3 clients/, 'no other figure for the same pool')
  t.match(read('README.md'), `max: 14 })   // concurrency (10) + ${MAX_IN_FLIGHT + 1}`)
})

t.test('issue 21.10: no direct dependency needs a newer Node than engines allows (kysely 0.29 wanted 22)', async (t) => {
  const manifest = JSON.parse(read('package.json')) as { engines: { node: string }, dependencies: Record<string, string>, devDependencies: Record<string, string> }
  const floor = /^>=(\d+)\.(\d+)$/.exec(manifest.engines.node)
  t.ok(floor !== null, 'engines.node is a plain >= range')
  const [major, minor] = [Number(floor?.[1]), Number(floor?.[2])]
  const tooNew: string[] = []
  for (const name of Object.keys({ ...manifest.dependencies, ...manifest.devDependencies })) {
    const installed = JSON.parse(read(`node_modules/${name}/package.json`)) as { version: string, engines?: { node?: string } }
    // Only the plain ">=N[.M]" form is judged; "^20.19 || >=22" style ranges include 20.19's line.
    const needs = /^>=\s*(\d+)(?:\.(\d+))?(?:\.\d+)?$/.exec(installed.engines?.node?.trim() ?? '')
    if (needs === null) continue
    const [needMajor, needMinor] = [Number(needs[1]), Number(needs[2] ?? 0)]
    if (needMajor > major || (needMajor === major && needMinor > minor)) tooNew.push(`${name}@${installed.version} wants node ${installed.engines?.node ?? ''}`)
  }
  t.same(tooNew, [], `every direct dependency runs on node ${manifest.engines.node}`)
  t.equal(JSON.parse(read('node_modules/kysely/package.json')).engines.node, '>=20.0.0', 'kysely is on a line that supports Node 20')
})
