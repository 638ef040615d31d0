// The Fastify receiver, runnable as is: `npm start` (or `node examples/fastify/server.js`
// after `npm run build`). Configure with SIR_WEBHOOK_SECRET, PORT and HOST.
import { setTimeout as sleep } from 'node:timers/promises'
import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import { Webhooks } from 'sir-webhooks'
import sirWebhooks from 'sir-webhooks/fastify'
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

const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' } })
const metrics = await prometheusMetrics()
const webhooks = new Webhooks({ secret, logger: app.log, ...(metrics === undefined ? {} : { telemetry: { meterProvider: metrics.meterProvider } }) })

webhooks.on('action.completed', async (event, { log, attempt }) => {
  // Handlers must be idempotent: delivery is at-least-once and may be out of order.
  if (slowHandlerMs > 0) await sleep(slowHandlerMs)
  log.info({ actionId: event.data.actionId, tokensDistributed: event.data.tokensDistributed, attempt }, 'action completed: tokens distributed')
})
webhooks.on(['token_pool.low_balance', 'token_pool.depleted'], async (event, { log }) => {
  log.warn({ data: event.data }, 'token pool needs attention')
})
webhooks.onAny(async (event, { log }) => {
  log.info('event handled')
})
webhooks.onError((error, event, info) => {
  app.log.error({ err: error, event: { id: event.id, type: event.type }, handler: info.handler }, 'handler failed for good')
})

await app.register(sirWebhooks, { webhooks, path: '/webhooks/sir' })

// Readiness: 503 while degraded or closing, so a load balancer sends deliveries
// elsewhere (SIR Giving retries them) rather than into a full queue.
app.get('/health', (request, reply) => {
  const health = webhooks.health()
  reply.code(health.status === 'ok' ? 200 : 503).send({ ...health, stats: webhooks.stats() })
})

if (metrics !== undefined) {
  // Prometheus scrapes this: the OpenTelemetry SDK's exporter, served on the app's own port.
  app.get('/metrics', (request, reply) => {
    reply.hijack()
    metrics.exporter.getMetricsRequestHandler(request.raw, reply.raw)
  })
}
// On SIGINT or SIGTERM (a deploy, Ctrl+C), app.close() runs the plugin's onClose
// hook: new deliveries get 503, accepted events finish (up to closeGraceMs), then
// the process exits 0. A second signal, an uncaught error, or a close outlasting
// `delay` exits 1. `delay` sits above the receiver's two grace periods (draining,
// then onDeadLetter callbacks), so the receiver's own bound ends a slow close first.
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
console.log(`health:  ${address}/health${metrics === undefined ? '' : `\nmetrics: ${address}/metrics (Prometheus)`}`)

/**
 * A MeterProvider whose reader is the Prometheus exporter, when the OpenTelemetry
 * SDK packages are installed (this repository has them as dev dependencies; in
 * your app: npm install @opentelemetry/sdk-metrics @opentelemetry/exporter-prometheus).
 * Without them the example runs, without /metrics.
 */
async function prometheusMetrics () {
  try {
    const { MeterProvider } = await import('@opentelemetry/sdk-metrics')
    const { PrometheusExporter } = await import('@opentelemetry/exporter-prometheus')
    // preventServerStart: served by Fastify below rather than on a second port.
    const exporter = new PrometheusExporter({ preventServerStart: true })
    return { exporter, meterProvider: new MeterProvider({ readers: [exporter] }) }
  } catch {
    return undefined
  }
}
