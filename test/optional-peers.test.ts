import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import t from 'tap'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../src')

/** Every module a source file reaches through static imports, local files followed, packages listed. */
function reachablePackages (entry: string): Set<string> {
  const packages = new Set<string>()
  const seen = new Set<string>()
  const visit = (file: string): void => {
    if (seen.has(file)) return
    seen.add(file)
    const source = readFileSync(file, 'utf8')
    for (const match of source.matchAll(/^\s*(?:import|export)\s(?!type\b)[^'"]*?from\s+'([^']+)'|^\s*import\s+'([^']+)'/gm)) {
      const specifier = match[1] ?? match[2] ?? ''
      if (specifier.startsWith('.')) visit(resolve(dirname(file), specifier.replace(/\.js$/, '.ts')))
      else packages.add(specifier)
    }
  }
  visit(entry)
  return packages
}

t.test('the package root and the other adapters never load better-sqlite3, bullmq or pg', async (t) => {
  const packages = reachablePackages(resolve(root, 'index.ts'))
  t.notOk(packages.has('better-sqlite3'), 'better-sqlite3 is not reached from sir-webhooks')
  t.notOk(packages.has('bullmq'), 'bullmq is not reached from sir-webhooks')
  t.notOk(packages.has('pg'), 'pg is not reached from sir-webhooks')
  t.ok(packages.has('pino'), 'the walk does follow imports')
})

t.test('the store entry points load their driver only when an inbox is made', async (t) => {
  t.notOk(reachablePackages(resolve(root, 'sqlite/inbox.ts')).has('better-sqlite3'), 'sqlite/inbox.ts requires better-sqlite3 lazily')
  t.notOk(reachablePackages(resolve(root, 'bullmq/inbox.ts')).has('bullmq'), 'bullmq/inbox.ts imports bullmq lazily')
  t.notOk(reachablePackages(resolve(root, 'postgres/inbox.ts')).has('pg'), 'postgres/inbox.ts imports pg lazily')
})

t.test('@opentelemetry/api is never imported statically: the Node root requires it lazily, the Web root not at all', async (t) => {
  t.notOk(reachablePackages(resolve(root, 'index.ts')).has('@opentelemetry/api'), 'not from sir-webhooks')
  t.notOk(reachablePackages(resolve(root, 'index-web.ts')).has('@opentelemetry/api'), 'not from the Web root')
})

t.test('without @opentelemetry/api installed the package loads and a receiver answers and counts', async (t) => {
  const fixtures = resolve(dirname(fileURLToPath(import.meta.url)), 'fixtures/no-otel')
  const stdout = await new Promise<string>((resolvePromise, reject) => {
    execFile(process.execPath, ['--import', pathToFileURL(resolve(fixtures, 'hide-otel.mjs')).href, resolve(fixtures, 'receiver.mjs')], { timeout: 30_000 }, (error, out, err) => {
      if (error !== null) reject(new Error(`${error.message}\n${err}`))
      else resolvePromise(out)
    })
  })
  t.same(JSON.parse(stdout), { apiLoadable: false, code: 'ACCEPTED', accepted: 1 })
})
