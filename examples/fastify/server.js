// The Fastify receiver, runnable as is: `npm start` (or `node examples/fastify/server.js`
// after `npm run build`). Configure with SIR_WEBHOOK_SECRET, PORT and HOST, and
// INTERNAL_PORT / INTERNAL_HOST for /health and /metrics.
import { setTimeout as sleep } from 'node:timers/promises'
import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import { Webhooks } from 'sir-webhooks'
import sirWebhooks from 'sir-webhooks/fastify'
import { prometheusMetrics, serveInternal } from '../internal-server.js'
import { exitIfPortBusy } from '../lifecycle.js'
import { printSendInstructions } from '../send-instructions.js'

// An embedded default so the example runs on a fresh machine. Never use it in
// production: set SIR_WEBHOOK_SECRET to the secret SIR Giving showed you.
const DEVELOPMENT_SECRET = 'whsec_local_development_only'
const secret = process.env.SIR_WEBHOOK_SECRET || DEVELOPMENT_SECRET
const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'
// SLOW_HANDLER_MS (default 0) makes each action.completed take that long: send one,
// press Ctrl+C, and watch the shutdown wait for it.
const slowHandlerMs = Number(process.env.SLOW_HANDLER_MS ?? 0)

const app = Fastify({
  logger: { level: process.env.LOG_LEVEL ?? 'info' },
  // Fastify's default is no limit. A body is read in full before its signature can
  // be checked, so without one anybody can hold connections open by sending a body
  // a byte at a time, unauthenticated. 10 s is ample for a 1 MiB delivery.
  requestTimeout: 10_000
})
const metrics = await prometheusMetrics()
const webhooks = new Webhooks({ secret, logger: app.log, ...(metrics === undefined ? {} : { telemetry: { meterProvider: metrics.meterProvider } }) })

// Named functions: the name labels the handler in logs, dead letters and metrics,
// and a durable inbox (SQLite, Postgres, BullMQ) requires one.
webhooks.on('action.completed', async function logCompletedAction (event, { log, attempt }) {
  // Handlers must be idempotent: delivery is at-least-once and may be out of order.
  if (slowHandlerMs > 0) await sleep(slowHandlerMs)
  log.info({ actionId: event.data.actionId, tokensDistributed: event.data.tokensDistributed, attempt }, 'action completed: tokens distributed')
})
webhooks.on(['token_pool.low_balance', 'token_pool.depleted'], async function warnTokenPool (event, { log }) {
  log.warn({ data: event.data }, 'token pool needs attention')
})
webhooks.onAny(async function logEveryEvent (event, { log }) {
  log.info('event handled')
})
webhooks.onError((error, event, info) => {
  app.log.error({ err: error, event: { id: event.id, type: event.type }, handler: info.handler }, 'handler failed for good')
})

await app.register(sirWebhooks, { webhooks, path: '/webhooks/sir' })

// On SIGINT or SIGTERM (a deploy, Ctrl+C), app.close() runs the plugin's onClose
// hook: new deliveries get 503, accepted events finish (up to closeGraceMs), then
// the process exits 0. A second signal, an uncaught error, or a close outlasting
// `delay` exits 1. `delay` sits above the receiver's two grace periods (draining,
// then onDeadLetter callbacks), so the receiver's own bound ends a slow close first.
// The internal port stays open meanwhile: its /health answers 503 `closing`.
closeWithGrace({ delay: 25_000, logger: app.log }, async ({ signal, err }) => {
  if (err !== undefined) app.log.error({ err }, 'closing after an uncaught error')
  else app.log.info({ signal }, 'closing: refusing new deliveries, finishing accepted ones')
  await app.close()
  app.log.info('closed: every accepted event finished')
})

let address
try {
  address = await app.listen({ port, host })
} catch (error) {
  exitIfPortBusy(error, { port, host })
  throw error
}

printSendInstructions({ url: `${address}/webhooks/sir`, secret, developmentSecret: DEVELOPMENT_SECRET })
// Readiness (503 while degraded or closing) and Prometheus, off the public port.
await serveInternal({ webhooks, metrics })
