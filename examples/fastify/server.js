// The Fastify receiver, runnable as is: `npm start` (or `node examples/fastify/server.js`
// after `npm run build`). Configure with SIR_WEBHOOK_SECRET, PORT and HOST.
import Fastify from 'fastify'
import { Webhooks } from 'sir-webhooks'
import sirWebhooks from 'sir-webhooks/fastify'
import { printSendInstructions } from '../send-instructions.js'

// An embedded default so the example runs on a fresh machine. Never use it in
// production: set SIR_WEBHOOK_SECRET to the secret SIR Giving showed you.
const DEVELOPMENT_SECRET = 'whsec_local_development_only'
const secret = process.env.SIR_WEBHOOK_SECRET || DEVELOPMENT_SECRET
const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'

const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' } })
const metrics = await prometheusMetrics()
const webhooks = new Webhooks({ secret, logger: app.log, ...(metrics === undefined ? {} : { telemetry: { meterProvider: metrics.meterProvider } }) })

webhooks.on('action.completed', async (event, { log, attempt }) => {
  // Handlers must be idempotent: delivery is at-least-once and may be out of order.
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
const address = await app.listen({ port, host })

printSendInstructions({ url: `${address}/webhooks/sir`, secret, developmentSecret: DEVELOPMENT_SECRET })
console.log(`health:  ${address}/health${metrics === undefined ? '' : `\nmetrics: ${address}/metrics (Prometheus)`}`)

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    // app.close() runs the plugin's onClose hook, which drains the receiver.
    app.log.info({ signal }, 'closing: refusing new deliveries, finishing accepted ones')
    app.close().then(() => process.exit(0), (error) => {
      app.log.error({ err: error }, 'close failed')
      process.exit(1)
    })
  })
}

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
