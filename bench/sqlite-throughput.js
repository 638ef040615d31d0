// Durable acknowledgement throughput of the SQLite inbox: a node:http receiver on a
// SQLite file (CPU 1) under autocannon (CPU 0), 50 connections, a fresh event id
// per request, a no-op handler. Reports acknowledged/s, non-2xx answers, p99, and
// how long the handlers took to drain the backlog once the load stopped.
//
//   npm run build && node bench/sqlite-throughput.js [--duration 10] [--connections 50] [--memory] [--cpu-prof <dir>]
//
// `--memory` runs the same receiver on the default in-memory inbox, for comparison.
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { DeliverySource, PATH, SECRET } from './deliveries.js'

const { values: flags } = parseArgs({
  options: {
    server: { type: 'string' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    memory: { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' }
  }
})

if (flags.server !== undefined) await serve(flags.server)
else await measure()

/** The child: one receiver, reporting its port and, on request, its backlog. */
async function serve (path) {
  const { Webhooks } = await import('../dist/index.js')
  const { nodeListener } = await import('../dist/node/listener.js')
  const inbox = path === 'memory' ? undefined : (await import('../dist/sqlite/inbox.js')).sqliteInbox({ path })
  const webhooks = new Webhooks({ secret: process.env.SIR_BENCH_SECRET, inbox, logger: silentLogger() })
  let handled = 0
  webhooks.onAny(async function count () { handled += 1 })
  const server = http.createServer(nodeListener(webhooks, { path: PATH }))
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  process.on('message', (message) => {
    if (message === 'stats') process.send({ handled, backlog: webhooks.inbox.size ?? 0 })
    if (message === 'stop') webhooks.close().finally(() => process.exit(0))
  })
  process.send({ port: server.address().port })
}

function silentLogger () {
  const noop = () => {}
  const logger = { debug: noop, info: noop, warn: noop, error: noop, child: () => logger }
  return logger
}

async function measure () {
  const pinned = os.availableParallelism() >= 2 && hasTaskset()
  if (pinned) execFileSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' })
  const dir = mkdtempSync(join(os.tmpdir(), 'sir-bench-sqlite-'))
  const target = flags.memory ? 'memory' : join(dir, 'inbox.db')
  const script = fileURLToPath(import.meta.url)
  const profile = flags['cpu-prof'] === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', flags['cpu-prof']]
  const child = spawn(pinned ? 'taskset' : process.execPath, [...(pinned ? ['-c', '1', process.execPath] : []), ...profile, script, '--server', target], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, SIR_BENCH_SECRET: SECRET, NODE_ENV: 'production' }
  })
  const ask = () => new Promise((resolve) => { child.once('message', resolve); child.send('stats') })
  try {
    const { port } = await new Promise((resolve) => child.once('message', resolve))
    const source = new DeliverySource('sir', 'small')
    source.selfCheck()
    source.refresh()
    const result = await autocannon({
      url: `http://127.0.0.1:${port}${PATH}`,
      method: 'POST',
      connections: Number(flags.connections),
      duration: Number(flags.duration),
      requests: [{
        setupRequest (request) {
          const delivery = source.next()
          request.headers = delivery.headers
          request.body = delivery.body
          return request
        }
      }]
    })
    const stoppedAt = Date.now()
    let stats = await ask()
    while (stats.backlog > 0 && Date.now() - stoppedAt < 60_000) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      stats = await ask()
    }
    const acknowledged = result['2xx']
    console.log(JSON.stringify({
      inbox: flags.memory ? 'memory' : 'sqlite',
      pinned,
      connections: Number(flags.connections),
      durationSeconds: Number(flags.duration),
      acknowledgedPerSecond: Math.round(acknowledged / Number(flags.duration)),
      acknowledged,
      non2xx: result.non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
      p50Ms: result.latency.p50,
      p99Ms: result.latency.p99,
      handled: stats.handled,
      backlogAfter: stats.backlog,
      drainedInMs: stats.backlog === 0 ? Date.now() - stoppedAt : null
    }, null, 2))
  } finally {
    child.send('stop')
    await new Promise((resolve) => child.once('exit', resolve))
    rmSync(dir, { recursive: true, force: true })
  }
}

function hasTaskset () {
  try {
    execFileSync('taskset', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}
