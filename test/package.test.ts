import { execFileSync, spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, posix } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

// What `git clone && npm ci && npm pack` ships, and whether it works once installed.
// The clone is the working tree's files that git would commit (tracked, or new and not
// ignored: no dist/, no node_modules/), so a forgotten build step shows as a missing dist/.
// Installing is done without the network: the tarball is unpacked where npm would put
// it, and its dependencies are linked from this repository's node_modules.

const root = fileURLToPath(new URL('../', import.meta.url))
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
const work = mkdtempSync(join(tmpdir(), 'sir-webhooks-pack-'))
t.teardown(() => { rmSync(work, { recursive: true, force: true }) })
// Packing builds the whole package; on a loaded 2-core machine that takes a while.
t.setTimeout(300_000)

const clone = join(work, 'clone')
const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: root, encoding: 'utf8' }).split('\0').filter((file) => file !== '')
for (const file of files) {
  try {
    cpSync(join(root, file), join(clone, file))
  } catch (error) {
    // A file deleted in the working tree but still tracked: git would not clone it either way.
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
}
symlinkSync(join(root, 'node_modules'), join(clone, 'node_modules'), 'dir')

const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string
  bin: Record<string, string>
  exports: Record<string, unknown>
  dependencies: Record<string, string>
  peerDependencies: Record<string, string>
}

/** Every file an export condition points at, and the subpaths. */
function exportTargets (): string[] {
  const targets: string[] = []
  const walk = (value: unknown): void => {
    if (typeof value === 'string') targets.push(value.replace(/^\.\//, ''))
    else if (value !== null && typeof value === 'object') for (const inner of Object.values(value)) walk(inner)
  }
  walk(manifest.exports)
  return [...new Set(targets)]
}

const packed = spawnSync(npm, ['pack', '--json', '--pack-destination', work], { cwd: clone, encoding: 'utf8' })
const packResult = packed.status === 0 ? (JSON.parse(packed.stdout) as Array<{ filename: string, files: Array<{ path: string }> }>)[0] : undefined

t.test('npm pack from a clean clone builds first and ships dist/', async (t) => {
  t.equal(packed.status, 0, `npm pack succeeds\n${packed.stderr}`)
  if (packResult === undefined) return
  const shipped = new Set(packResult.files.map((file) => file.path))
  for (const target of exportTargets()) t.ok(shipped.has(target), `ships ${target}`)
  for (const bin of Object.values(manifest.bin)) t.ok(shipped.has(bin.replace(/^\.\//, '')), `ships the bin ${bin}`)
  for (const file of ['README.md', 'LICENSE', 'CHANGELOG.md', 'SECURITY.md', 'package.json']) t.ok(shipped.has(file), `ships ${file}`)
  t.notOk([...shipped].some((file) => file.startsWith('test/') || file.startsWith('node_modules/')), 'no tests, no node_modules')
})

t.test('every source map points at files the package ships', async (t) => {
  if (packResult === undefined) return t.fail('nothing was packed')
  const shipped = new Set(packResult.files.map((file) => file.path))
  const maps = [...shipped].filter((file) => file.endsWith('.js.map'))
  t.ok(maps.length > 20, `${maps.length} source maps`)
  const missing: string[] = []
  for (const map of maps) {
    const { sources, sourcesContent } = JSON.parse(readFileSync(join(clone, map), 'utf8')) as { sources: string[], sourcesContent?: Array<string | null> }
    sources.forEach((source, index) => {
      if (typeof sourcesContent?.[index] === 'string') return
      const resolved = posix.normalize(posix.join(posix.dirname(map), source))
      if (!shipped.has(resolved)) missing.push(`${map} → ${resolved}`)
    })
  }
  t.same(missing, [], 'no source map names a file left out of the package')
})

t.test('installed in a fresh project: every subpath imports, require(esm) works, a tiny receiver answers, the bin runs', async (t) => {
  if (packResult === undefined) return t.fail('nothing was packed')
  const app = join(work, 'app')
  const installed = join(app, 'node_modules', manifest.name)
  mkdirSync(installed, { recursive: true })
  execFileSync('tar', ['-xzf', join(work, packResult.filename), '-C', installed, '--strip-components=1'])
  for (const dependency of [...Object.keys(manifest.dependencies), ...Object.keys(manifest.peerDependencies)]) {
    const link = join(app, 'node_modules', dependency)
    mkdirSync(dirname(link), { recursive: true })
    symlinkSync(join(root, 'node_modules', dependency), link, 'dir')
  }
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }))

  const subpaths = Object.keys(manifest.exports).filter((subpath) => subpath !== './package.json')
  writeFileSync(join(app, 'check.mjs'), `
import http from 'node:http'
const subpaths = ${JSON.stringify(subpaths)}
for (const subpath of subpaths) {
  const specifier = '${manifest.name}' + subpath.slice(1)
  const module = await import(specifier)
  if (Object.keys(module).length === 0) throw new Error(specifier + ' exports nothing')
  console.log('imported ' + specifier)
}
const { default: manifest } = await import('${manifest.name}/package.json', { with: { type: 'json' } })
console.log('version ' + manifest.version)

const { Webhooks, sign } = await import('${manifest.name}')
const { nodeListener } = await import('${manifest.name}/node')
const { createEvent } = await import('${manifest.name}/testing')
const secret = 'whsec_pack_test'
const { pino } = await import('pino')
const webhooks = new Webhooks({ secret, logger: pino({ level: 'silent' }) })
const handled = new Promise((resolve) => webhooks.on('action.completed', async function record (event) { resolve(event.id) }))
const server = http.createServer(nodeListener(webhooks, { path: '/webhooks/sir' }))
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
const event = createEvent('action.completed', { tokensDistributed: 5 })
const body = JSON.stringify(event)
const signed = sign({ secret, rawBody: body })
const response = await fetch('http://127.0.0.1:' + server.address().port + '/webhooks/sir', {
  method: 'POST', body, headers: { 'content-type': 'application/json', 'x-sir-signature': signed.signature, 'x-sir-timestamp': signed.timestamp }
})
console.log('status ' + response.status)
console.log('handled ' + (await handled === event.id))
server.close()
await webhooks.close()
`)
  const esm = spawnSync(process.execPath, ['check.mjs'], { cwd: app, encoding: 'utf8', timeout: 60_000 })
  t.equal(esm.status, 0, `check.mjs exits 0\n${esm.stderr}`)
  for (const subpath of subpaths) t.match(esm.stdout, `imported ${manifest.name}${subpath.slice(1)}\n`, `imports ${subpath}`)
  t.match(esm.stdout, /^version \d+\.\d+\.\d+$/m, 'package.json is exported')
  t.match(esm.stdout, /^status 200$/m, 'the tiny receiver answers 200')
  t.match(esm.stdout, /^handled true$/m, 'and runs the handler')

  writeFileSync(join(app, 'check.cjs'), `const { Webhooks } = require('${manifest.name}'); const { nodeListener } = require('${manifest.name}/node'); console.log(typeof Webhooks + ' ' + typeof nodeListener)\n`)
  const cjs = spawnSync(process.execPath, ['check.cjs'], { cwd: app, encoding: 'utf8', timeout: 60_000 })
  t.equal(cjs.stdout.trim().split('\n').at(-1), 'function function', `require(esm) loads the package from CommonJS\n${cjs.stderr}`)

  const bin = spawnSync(process.execPath, [join(installed, manifest.bin['sir-webhooks'] ?? ''), '--version'], { cwd: app, encoding: 'utf8' })
  t.match(bin.stdout, /^\d+\.\d+\.\d+\n$/, 'the sir-webhooks bin runs')
})

t.test('TypeScript resolves every subpath with moduleResolution node16, nodenext and bundler', async (t) => {
  if (packResult === undefined) return t.fail('nothing was packed')
  const app = join(work, 'app')
  writeFileSync(join(app, 'check.ts'), `
import { Webhooks, type WebhookEvent } from '${manifest.name}'
import sirWebhooks from '${manifest.name}/fastify'
import { expressMiddleware } from '${manifest.name}/express'
import { nodeListener } from '${manifest.name}/node'
import { fetchHandler } from '${manifest.name}/fetch'
import { createEvent } from '${manifest.name}/testing'
import { sqliteInbox } from '${manifest.name}/sqlite'
import { bullmqInbox } from '${manifest.name}/bullmq'
const webhooks = new Webhooks({ secret: 'whsec_x' })
webhooks.on('action.completed', (event) => { const tokens: number = event.data.tokensDistributed; void tokens })
const event: WebhookEvent = createEvent('campaign.paused')
void [sirWebhooks, expressMiddleware, nodeListener, fetchHandler, sqliteInbox, bullmqInbox, event]
`)
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  for (const [module, moduleResolution] of [['node16', 'node16'], ['nodenext', 'nodenext'], ['esnext', 'bundler']] as const) {
    const result = spawnSync(process.execPath, [tsc, '--noEmit', '--strict', '--skipLibCheck', '--types', 'node', '--typeRoots', join(root, 'node_modules', '@types'), '--target', 'es2022', '--module', module, '--moduleResolution', moduleResolution, 'check.ts'], { cwd: app, encoding: 'utf8' })
    t.equal(result.status, 0, `moduleResolution ${moduleResolution}\n${result.stdout}${result.stderr}`)
  }
})

t.test('README: a CommonJS TypeScript project compiles the quick start with TypeScript 5.8+ and module nodenext, not node16', async (t) => {
  if (packResult === undefined) return t.fail('nothing was packed')
  // A project without "type": "module", sharing the installed package of the test above.
  const app = join(work, 'app-cjs')
  mkdirSync(app, { recursive: true })
  symlinkSync(join(work, 'app', 'node_modules'), join(app, 'node_modules'), 'dir')
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app-cjs', private: true }))
  writeFileSync(join(app, 'check.ts'), `
import { Webhooks } from '${manifest.name}'
import sirWebhooks from '${manifest.name}/fastify'
const webhooks = new Webhooks({ secret: 'whsec_x' })
webhooks.on('action.completed', async function creditTokens (event) { const tokens: number = event.data.tokensDistributed; void tokens })
void sirWebhooks
`)
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  const compile = (module: string, moduleResolution: string): ReturnType<typeof spawnSync> => spawnSync(process.execPath, [tsc, '--noEmit', '--strict', '--skipLibCheck', '--types', 'node', '--typeRoots', join(root, 'node_modules', '@types'), '--target', 'es2022', '--module', module, '--moduleResolution', moduleResolution, 'check.ts'], { cwd: app, encoding: 'utf8' })
  const nodenext = compile('nodenext', 'nodenext')
  t.equal(nodenext.status, 0, `module nodenext compiles import to require(esm)\n${String(nodenext.stdout)}`)
  const node20 = compile('node20', 'nodenext')
  t.equal(node20.status, 0, `module node20 too\n${String(node20.stdout)}`)
  const node16 = compile('node16', 'node16')
  t.match(String(node16.stdout), /TS1479/, 'module node16 refuses it, as the README says')
  const node10 = compile('commonjs', 'node10')
  t.match(String(node10.stdout), /TS5107|Cannot find module/, 'moduleResolution node10: deprecated (TypeScript 6) or blind to exports (5.x)')
})
