// Child process of bench/burst.js: a Fastify receiver with the sir-webhooks plugin
// on the inbox named in argv, with every receiver and inbox option at its default
// (the point of the benchmark), and one handler whose behaviour the parent names:
//   noop                 returns at once
//   sleep:MS             waits MS milliseconds (a call to a partner API)
//   rate:N               returns at once, registered with { rate: { perSecond: N } }
//   retry-later:MS:AFTER throws RetryLater({ afterMs: AFTER }) until MS after its
//                        first call, then returns (a partner answering 429 with Retry-After)
// Answers the parent over IPC with what the handler saw.
import { createHistogram, monitorEventLoopDelay } from 'node:perf_hooks'
import { PATH } from './deliveries.js'
import { receiverInbox } from './receiver-inbox.js'

const [kind, target, handlerSpec = 'noop'] = process.argv.slice(2)
const secret = process.env.SIR_BENCH_SECRET
if (process.send === undefined || secret === undefined || kind === undefined) {
  console.error('bench/burst-server.js is started by bench/burst.js')
  process.exit(2)
}


const { Webhooks, RetryLater } = await import('../dist/index.js')
const { sirWebhooks } = await import('../dist/fastify/plugin.js')
const { default: Fastify } = await import('fastify')
const { pino } = await import('pino')
const inbox = await receiverInbox(kind, target, kind === 'bullmq' ? process.env.SIR_BENCH_QUEUE : process.env.SIR_BENCH_SCHEMA)
// SIR_BENCH_MAX_QUEUE_SIZE: only to compare with a build from before maxBacklog,
// whose durable inboxes were bounded by maxQueueSize (default 10 000). Name it with the figures.
const maxQueueSize = process.env.SIR_BENCH_MAX_QUEUE_SIZE === undefined ? {} : { maxQueueSize: Number(process.env.SIR_BENCH_MAX_QUEUE_SIZE) }
// SIR_BENCH_CONCURRENCY=n: the receiver's `concurrency` (default 10), to see what fewer handler slots do to the acknowledgements.
const concurrencyOption = process.env.SIR_BENCH_CONCURRENCY === undefined ? {} : { concurrency: Number(process.env.SIR_BENCH_CONCURRENCY) }
const webhooks = new Webhooks({ secret, logger: pino({ level: 'error' }), ...maxQueueSize, ...concurrencyOption, ...(inbox === undefined ? {} : { inbox }) })

let calls = 0
let handled = 0
let firstCallAt
const seen = new Set()
let twice = 0
let dead = 0
const [mode, first, second] = handlerSpec.split(':')
const options = { name: 'bench' }
if (mode === 'rate') options.rate = { perSecond: Number(first) }
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
async function bench (event) {
  calls += 1
  firstCallAt ??= Date.now()
  if (mode === 'sleep') await sleep(Number(first))
  if (mode === 'retry-later' && Date.now() - firstCallAt < Number(first)) throw new RetryLater({ afterMs: Number(second) })
  handled += 1
  if (seen.has(event.id)) twice += 1
  else seen.add(event.id)
}
// SIR_BENCH_NO_HANDLER=1: an accept-only receiver, to fill the store with a backlog first.
if (process.env.SIR_BENCH_NO_HANDLER !== '1') webhooks.onAny(bench, options)
webhooks.onDeadLetter(() => { dead += 1 })

const app = Fastify({ logger: false })
// The acknowledgement as the receiver sees it (request read to response written), in µs; and when the slow ones (> 50 ms) happened.
const ackTime = createHistogram()
let slowAcks = []
let loadStartedAt = Date.now()
app.addHook('onRequest', (request, reply, done) => { request.benchStart = process.hrtime.bigint(); done() })
app.addHook('onResponse', (request, reply, done) => {
  const micros = Number((process.hrtime.bigint() - request.benchStart) / 1000n)
  ackTime.record(Math.max(1, micros))
  if (micros > 50_000 && slowAcks.length < 2000) slowAcks.push([Date.now() - loadStartedAt, Math.round(micros / 1000)])
  done()
})
await app.register(sirWebhooks, { webhooks, path: PATH })
await app.listen({ port: 0, host: '127.0.0.1' })

// How long the event loop was blocked (ms), since the last 'loop-reset': what delays an acknowledgement in the process.
const loopDelay = monitorEventLoopDelay({ resolution: 1 })
loopDelay.enable()
// The receiver's CPU time so far (user + system): per delivery, a figure the machine's noise moves less than a rate.
const cpuMicros = () => { const { user, system } = process.cpuUsage(); return user + system }
const loopFigures = () => ({ loopP99: loopDelay.percentile(99) / 1e6, loopMax: loopDelay.max / 1e6, serverP99: ackTime.percentile(99) / 1000, serverMax: ackTime.max / 1000, slowAcks })
process.on('message', (message) => {
  if (message === 'loop-reset') {
    loopDelay.reset()
    ackTime.reset()
    slowAcks = []
    loadStartedAt = Date.now()
    process.send({ type: 'loop-reset' })
  } else if (message === 'stats') {
    process.send({ type: 'stats', accepted: webhooks.stats().deliveries.accepted, calls, handled, unique: seen.size, twice, dead, size: webhooks.inbox.size ?? null, at: Date.now(), health: webhooks.health().status, cpuMicros: cpuMicros(), ...loopFigures() })
  } else if (message === 'stop') {
    void app.close().finally(() => process.exit(0))
  }
})
process.on('disconnect', () => process.exit(0))
process.send({ type: 'ready', port: app.server.address().port })
