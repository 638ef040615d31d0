// The fetch receiver in a tiny Hono app, served by @hono/node-server:
// `node examples/fetch/server.js` after `npm run build`. Configure with
// SIR_WEBHOOK_SECRET, PORT and HOST (INTERNAL_PORT / INTERNAL_HOST for /health and
// /metrics). The same `handle` is what a Next.js route
// handler exports as POST, or what Bun.serve / Deno.serve take as `fetch`.
import { setTimeout as sleep } from 'node:timers/promises'
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { Webhooks } from 'sir-webhooks'
import { fetchHandler } from 'sir-webhooks/fetch'
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
webhooks.onAny(async function logEveryEvent (event, { log }) {
  log.info('event handled')
})

const handle = fetchHandler(webhooks)

const app = new Hono()
// c.req.raw is the untouched Web Request: the handler reads its exact bytes.
// Do not call c.req.json() (or any body reader) before it.
app.post('/webhooks/sir', (c) => handle(c.req.raw))
// /health and /metrics are on the internal port (../internal-server.js), not here.

const server = serve({ fetch: app.fetch, port, hostname: host }, (info) => {
  printSendInstructions({ url: `http://${host}:${info.port}/webhooks/sir`, secret, developmentSecret: DEVELOPMENT_SECRET })
  // Readiness (503 while degraded or closing) and Prometheus, off the public port.
  void serveInternal({ webhooks, metrics })
})
server.on('error', (error) => {
  exitIfPortBusy(error, { port, host })
  throw error
})
closeOnSignal(server, webhooks)
