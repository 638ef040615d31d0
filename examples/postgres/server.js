// The web process on Postgres: `node examples/postgres/server.js` after `npm run build`,
// the inbox's tables (sir-webhooks migrate --print) and schema.sql applied. Walkthrough:
// docs/getting-started.md. Configure with DATABASE_URL, SIR_WEBHOOK_SECRET, PORT, HOST,
// INTERNAL_PORT / INTERNAL_HOST (/health, /metrics), and ACCEPT_ONLY=true to leave
// every event to worker.js.
import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import sirWebhooks from 'sir-webhooks/fastify'
import { prometheusMetrics, serveInternal } from '../internal-server.js'
import { exitIfPortBusy } from '../lifecycle.js'
import { createReceiver } from './receiver.js'

const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'

// requestTimeout: Fastify's default is none, and a body is read in full before its
// signature can be checked; 10 s is ample for a 1 MiB delivery.
const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' }, requestTimeout: 10_000 })
const metrics = await prometheusMetrics()
const { webhooks, close } = createReceiver({
  logger: app.log,
  telemetry: metrics === undefined ? undefined : { meterProvider: metrics.meterProvider },
  acceptOnly: process.env.ACCEPT_ONLY === 'true'
})
await app.register(sirWebhooks, { webhooks, path: '/webhooks/sir' })
// The plugin drains the receiver on app.close(); the pool is ended after it.
app.addHook('onClose', async () => { await close() })

closeWithGrace({ delay: 25_000, logger: app.log }, async ({ signal, err }) => {
  if (err !== undefined) app.log.error({ err }, 'closing after an uncaught error')
  else app.log.info({ signal }, 'closing: refusing new deliveries, finishing accepted ones')
  await app.close()
  app.log.info('closed')
})

let address
try {
  address = await app.listen({ port, host })
} catch (error) {
  exitIfPortBusy(error, { port, host })
  throw error
}
process.stdout.write(`SIR Giving webhook receiver listening on ${address}/webhooks/sir (Postgres inbox)\n`)
await serveInternal({ webhooks, metrics })
