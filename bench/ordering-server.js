// Child process of bench/ordering.js: a node:http receiver on the inbox named in
// argv, every option at its default but `ordering`, which the mode sets:
//   off        no ordering
//   keys:K     ordered by one of K keys, spread by a hash of the event id
//   hot        every event on one key
// It accepts with no handler registered (the backlog waits in the store); on
// { run: N } it registers a no-op handler and answers { type: 'drained' } with the
// first start and last end of the N runs, and the most runs of one key at once.
import { writeFileSync } from 'node:fs'
import http from 'node:http'
import { Session } from 'node:inspector/promises'
import path from 'node:path'
import { PATH } from './deliveries.js'
import { receiverInbox } from './receiver-inbox.js'

const [kind, target, mode] = process.argv.slice(2)
const secret = process.env.SIR_BENCH_SECRET
if (process.send === undefined || secret === undefined || mode === undefined) {
  console.error('bench/ordering-server.js is started by bench/ordering.js')
  process.exit(2)
}


/** FNV-1a of the id: the benchmark's stand-in for a user's key (an action id, say). */
function keyNumber (id, keys) {
  let hash = 0x811c9dc5
  for (let i = 0; i < id.length; i++) hash = Math.imul(hash ^ id.charCodeAt(i), 0x01000193)
  return (hash >>> 0) % keys
}

function orderingFor (mode) {
  if (mode === 'off') return undefined
  if (mode === 'hot') return { key: () => 'hot' }
  const keys = Number(/^keys:(\d+)$/.exec(mode)?.[1])
  if (!(keys > 0)) throw new Error(`unknown mode ${mode}`)
  return { key: (event) => `k${keyNumber(event.id, keys)}` }
}

const { Webhooks } = await import('../dist/index.js')
const { nodeListener } = await import('../dist/node/listener.js')
const { pino } = await import('pino')
const ordering = orderingFor(mode)
const webhooks = new Webhooks({ secret, inbox: await receiverInbox(kind, target, process.env.SIR_BENCH_SCHEMA), logger: pino({ level: 'warn' }), ...(ordering === undefined ? {} : { ordering }) })
const server = http.createServer(nodeListener(webhooks, { path: PATH }))
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))

// SIR_BENCH_DRAIN_PROF=<dir>: a V8 profile of the drain alone (the fill's accepts
// left out), one file per run, named by store and mode (bench/profile-summary.js reads it).
const drainProfileDir = process.env.SIR_BENCH_DRAIN_PROF
let profiler
async function startDrainProfile () {
  if (drainProfileDir === undefined) return
  profiler = new Session()
  profiler.connect()
  await profiler.post('Profiler.enable')
  await profiler.post('Profiler.start')
}
async function saveDrainProfile () {
  if (profiler === undefined) return
  const { profile } = await profiler.post('Profiler.stop')
  writeFileSync(path.join(drainProfileDir, `drain-${kind}-${mode.replace(':', '')}-${process.pid}.cpuprofile`), JSON.stringify(profile))
}

async function run (expected) {
  await startDrainProfile()
  let handled = 0
  let firstStart
  let lastEnd
  let mostAtOnce = 0
  const running = new Map()
  webhooks.onAny(async function count (event, context) {
    firstStart ??= performance.now()
    const key = context.ordering?.key ?? event.id
    const now = (running.get(key) ?? 0) + 1
    running.set(key, now)
    if (now > mostAtOnce) mostAtOnce = now
    await Promise.resolve()
    running.set(key, running.get(key) - 1)
    handled += 1
    lastEnd = performance.now()
    if (handled === expected) {
      const drained = { type: 'drained', handled, seconds: (lastEnd - firstStart) / 1000, mostAtOnce: ordering === undefined ? undefined : mostAtOnce }
      void saveDrainProfile().finally(() => process.send(drained))
    }
  })
}

process.on('message', (message) => {
  if (message === 'stop') {
    server.close()
    void webhooks.close().finally(() => process.exit(0))
  } else if (typeof message?.run === 'number') void run(message.run)
})
process.on('disconnect', () => process.exit(0))
process.send({ type: 'ready', port: server.address().port })
