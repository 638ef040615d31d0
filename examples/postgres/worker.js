// The worker-only process on Postgres: no webhook port; runs the events any web
// process accepted into the same inbox. `node examples/postgres/worker.js` after
// `npm run build`; same DATABASE_URL, SIR_WEBHOOK_SECRET and SIR_SCHEMA as server.js,
// INTERNAL_PORT / INTERNAL_HOST for its /health and /metrics.
import closeWithGrace from 'close-with-grace'
import pino from 'pino'
import { prometheusMetrics, serveInternal } from '../internal-server.js'
import { createReceiver } from './receiver.js'

const logger = pino({ level: process.env.LOG_LEVEL ?? 'info' })
const metrics = await prometheusMetrics()
const { webhooks, close } = createReceiver({ logger, telemetry: metrics === undefined ? undefined : { meterProvider: metrics.meterProvider } })

// The inbox's timers are unref()ed (a receiver never holds a process open by
// accident), and a worker has no server to hold it: hold it open until it closes.
const keepAlive = setInterval(() => {}, 60_000)
closeWithGrace({ delay: 25_000, logger }, async ({ signal, err }) => {
  if (err !== undefined) logger.error({ err }, 'closing after an uncaught error')
  else logger.info({ signal }, 'closing: running handlers finish, unstarted events stay for the other processes')
  await close()
  clearInterval(keepAlive)
  logger.info('closed')
})

process.stdout.write('SIR Giving webhook worker running (Postgres inbox, no webhook port)\n')
await serveInternal({ webhooks, metrics })
