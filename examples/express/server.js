// The Express receiver, runnable as is: `node examples/express/server.js` after
// `npm run build`. Configure with SIR_WEBHOOK_SECRET, PORT and HOST,
// and INTERNAL_PORT / INTERNAL_HOST for /health and /metrics.
import { setTimeout as sleep } from 'node:timers/promises'
import express from 'express'
import { Webhooks } from 'sir-webhooks'
import { expressMiddleware } from 'sir-webhooks/express'
import { prometheusMetrics, serveInternal } from '../internal-server.js'
import { closeOnSignal, exitIfPortBusy } from '../lifecycle.js'
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

const metrics = await prometheusMetrics()
const webhooks = new Webhooks({ secret, ...(metrics === undefined ? {} : { telemetry: { meterProvider: metrics.meterProvider } }) })

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
webhooks.onError((error, event, info) => {
  webhooks.logger.error({ err: error, event: { id: event.id, type: event.type }, handler: info.handler }, 'handler failed for good')
})

const app = express()
// The webhook route comes before the app's JSON parser, so the body reaches the
// receiver unread and it verifies the exact bytes. If your app must mount
// express.json() first, pass it the hook instead:
//   app.use(express.json({ verify: captureRawBody }))   // from 'sir-webhooks/express'
app.post('/webhooks/sir', expressMiddleware(webhooks))
app.use(express.json())
// /health and /metrics are on the internal port (../internal-server.js), not here.

// Express 5 hands a listen error (a busy port) to this callback.
const server = app.listen(port, host, (error) => {
  if (error !== undefined) {
    exitIfPortBusy(error, { port, host })
    throw error
  }
  const { port: actualPort } = server.address()
  printSendInstructions({ url: `http://${host}:${actualPort}/webhooks/sir`, secret, developmentSecret: DEVELOPMENT_SECRET })
  // Readiness (503 while degraded or closing) and Prometheus, off the public port.
  void serveInternal({ webhooks, metrics })
})
closeOnSignal(server, webhooks)
