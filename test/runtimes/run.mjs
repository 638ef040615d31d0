// `npm run test:runtimes`: the docs/fetch.md snippets (and the Fastify plugin) on
// the real runtimes, installed from npm into a cache folder: Cloudflare Workers
// (workerd under miniflare, bundled as wrangler bundles), Deno, Bun, Node 22 and
// Node 24. Each server listens on a free port; the same conformance runs against
// each. Exits non-zero when a check fails or a runtime cannot be installed or started.
import { spawn } from 'node:child_process'
import { mkdir, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { conformance } from './conformance.mjs'
import { installRuntimes } from './install.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const projectRoot = join(here, '..', '..')
// Inside the project, so the bundles' bare `sir-webhooks` imports resolve to it.
const buildDir = join(here, '.build')
const SECRET = 'whsec_runtime_suite'
const START_TIMEOUT_MS = 60_000
// workerd's compatibility date for the test Worker: today's behaviour, within what this workerd knows.
const COMPATIBILITY_DATE = '2026-01-01'

const paths = await installRuntimes()
await rm(buildDir, { recursive: true, force: true })
await mkdir(buildDir, { recursive: true })
const bundles = await bundle(paths)

const targets = [
  { name: 'workers: module-scope receiver, no user waitUntil', worker: bundles.worker },
  { name: 'workers: Hono app', worker: bundles.honoWorker },
  { name: 'deno --allow-net (nothing else)', command: [paths.deno, 'run', '--no-lock', '--allow-net', join(here, 'harness', 'deno.js'), SECRET] },
  { name: 'deno: docs snippet', command: [paths.deno, 'run', '--no-lock', '--allow-net', '--allow-env=SIR_WEBHOOK_SECRET', join(here, 'harness', 'deno.js')] },
  { name: 'bun: Bun.serve', command: [paths.bun, join(here, 'harness', 'bun.js')] },
  ...[['node 22', paths.node22], ['node 24', paths.node24]].flatMap(([version, node]) => [
    { name: `${version}: Fastify plugin`, command: [node, join(here, 'harness', 'node-fastify.js')] },
    { name: `${version}: fetch handler as a Next.js route handler`, command: [node, bundles.nextRoute] }
  ])
]

let passed = 0
let failed = 0
let runNumber = 0
for (const target of targets) {
  runNumber += 1
  const started = Date.now()
  let results
  let server
  try {
    server = target.worker === undefined ? await startProcess(target.command) : await startWorker(paths, target.worker)
    results = await conformance(server.url, SECRET, `r${runNumber}_${Date.now()}`)
  } catch (error) {
    results = [{ name: 'starts and answers', ok: false, detail: String(error?.stack ?? error) }]
  } finally {
    await server?.stop()
  }
  const bad = results.filter((result) => !result.ok)
  console.log(`# ${target.name} (${Date.now() - started} ms)`)
  for (const result of results) {
    console.log(`${result.ok ? 'ok' : 'not ok'} - ${target.name}: ${result.name}`)
    if (!result.ok) console.log(`  # ${JSON.stringify(result.detail)}`)
  }
  if (bad.length > 0 && server !== undefined) console.log(server.output().replace(/^/gm, '  # '))
  passed += results.length - bad.length
  failed += bad.length
}
await rm(buildDir, { recursive: true, force: true })
console.log(`runtimes: ${passed} passed, ${failed} failed`)
process.exitCode = failed === 0 ? 0 : 1

/** Bundles the Workers as wrangler does (workerd, worker, browser conditions), and the Next route for Node. */
async function bundle ({ esbuild: esbuildPath }) {
  const esbuild = createRequire(import.meta.url)(esbuildPath)
  const out = (name) => join(buildDir, name)
  const worker = {
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['browser', 'module', 'main'],
    external: ['cloudflare:*'],
    logLevel: 'warning'
  }
  await Promise.all([
    esbuild.build({ ...worker, entryPoints: [join(here, 'harness', 'worker.js')], outfile: out('worker.mjs') }),
    esbuild.build({ ...worker, entryPoints: [join(here, 'harness', 'hono-worker.js')], outfile: out('hono-worker.mjs') }),
    esbuild.build({
      bundle: true,
      format: 'esm',
      platform: 'node',
      packages: 'external',
      alias: { 'next/server': join(here, 'harness', 'next-server.js') },
      entryPoints: [join(here, 'harness', 'next-route.js')],
      outfile: out('next-route.mjs'),
      logLevel: 'warning'
    })
  ])
  return { worker: out('worker.mjs'), honoWorker: out('hono-worker.mjs'), nextRoute: out('next-route.mjs') }
}

async function startWorker ({ miniflare }, scriptPath) {
  const { Miniflare } = await import(miniflare)
  let output = ''
  const collect = (stream) => { stream.on('data', (chunk) => { output += chunk }) }
  const mf = new Miniflare({
    modules: true,
    scriptPath,
    modulesRoot: dirname(scriptPath),
    compatibilityDate: COMPATIBILITY_DATE,
    bindings: { SIR_WEBHOOK_SECRET: SECRET },
    host: '127.0.0.1',
    port: 0,
    handleRuntimeStdio (stdout, stderr) { collect(stdout); collect(stderr) }
  })
  try {
    const url = await mf.ready
    return { url: url.href, stop: () => mf.dispose(), output: () => output }
  } catch (error) {
    await mf.dispose().catch(() => {})
    throw new Error(`the Worker did not start: ${error.message}\n${output}`, { cause: error })
  }
}

/** Spawns a server that prints `READY <url>` once it listens. */
function startProcess ([command, ...args]) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: projectRoot,
      env: { ...process.env, SIR_WEBHOOK_SECRET: SECRET, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let output = ''
    const exited = new Promise((resolve) => { child.once('exit', resolve) })
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      await exited
    }
    const timer = setTimeout(() => {
      stop().then(() => { reject(new Error(`${command} printed no READY line within ${START_TIMEOUT_MS} ms:\n${output}`)) }, reject)
    }, START_TIMEOUT_MS)
    const onData = (chunk) => {
      output += chunk
      const ready = /^READY (\S+)$/m.exec(output)
      if (ready !== null) {
        clearTimeout(timer)
        child.stdout.off('data', onData)
        child.stdout.on('data', (more) => { output += more })
        resolve({ url: ready[1], stop, output: () => output })
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', (chunk) => { output += chunk })
    child.once('error', (error) => { clearTimeout(timer); reject(error) })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`${command} exited (${code ?? signal}) before it was ready:\n${output}`))
    })
  })
}
