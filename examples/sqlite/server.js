// The Fastify receiver on a SQLite inbox, for one machine: `node examples/sqlite/server.js`
// after `npm run build` (npm install better-sqlite3 in your app). Accepted events
// survive a crash or a restart in the inbox file. Configure with SIR_WEBHOOK_SECRET
// ("new,old" while rotating), SIR_INBOX_PATH (default ./sir-inbox.db), APP_DB_PATH
// (the app's own database, default ./app.db), PORT, HOST, INTERNAL_PORT, INTERNAL_HOST.
import Database from 'better-sqlite3'
import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import { Webhooks } from 'sir-webhooks'
import sirWebhooks from 'sir-webhooks/fastify'
import { sqliteInbox } from 'sir-webhooks/sqlite'
import { prometheusMetrics, serveInternal } from '../internal-server.js'
import { exitIfPortBusy } from '../lifecycle.js'

const secrets = (process.env.SIR_WEBHOOK_SECRET ?? '').split(',').map((secret) => secret.trim()).filter((secret) => secret !== '')
if (secrets.length === 0) {
  process.stderr.write('SIR_WEBHOOK_SECRET is not set: give it the signing secret SIR Giving showed you (while rotating: "new,old").\n')
  process.exit(1)
}
const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'

// The app's own data. SQLite handlers get no shared transaction (that is the
// Postgres inbox), so the write is idempotent by itself: keyed by the event id.
const appDb = new Database(process.env.APP_DB_PATH ?? './app.db')
appDb.pragma('journal_mode = WAL')
appDb.exec(`CREATE TABLE IF NOT EXISTS credits (
  event_id TEXT PRIMARY KEY,
  action_id TEXT NOT NULL,
  tokens INTEGER NOT NULL CHECK (tokens >= 0),
  credited_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)`)
const credit = appDb.prepare('INSERT INTO credits (event_id, action_id, tokens) VALUES (?, ?, ?) ON CONFLICT (event_id) DO NOTHING')

// requestTimeout: Fastify's default is none, and a body is read in full before its
// signature can be checked; 10 s is ample for a 1 MiB delivery.
const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' }, requestTimeout: 10_000 })
const metrics = await prometheusMetrics()
const webhooks = new Webhooks({
  secret: secrets.length === 1 ? secrets[0] : secrets,
  logger: app.log,
  ...(metrics === undefined ? {} : { telemetry: { meterProvider: metrics.meterProvider } }),
  inbox: sqliteInbox({ path: process.env.SIR_INBOX_PATH ?? './sir-inbox.db' })
})

// A durable inbox records which handlers of an event succeeded by name: named
// functions (or { name }), the same in every process that shares the inbox file.
webhooks.on('action.completed', async function creditTokens (event) {
  credit.run(event.id, event.data.actionId, event.data.tokensDistributed)
})
webhooks.onDeadLetter((deadLetter) => {
  app.log.error({ event: { id: deadLetter.event.id, type: deadLetter.event.type }, handler: deadLetter.handler },
    'dead letter: see it with sir-webhooks inbox show, run it again with inbox redrive once the cause is fixed')
})

await app.register(sirWebhooks, { webhooks, path: '/webhooks/sir' })
app.addHook('onClose', async () => {
  await webhooks.close()
  appDb.close()
})

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
process.stdout.write(`SIR Giving webhook receiver listening on ${address}/webhooks/sir (SQLite inbox)\n`)
await serveInternal({ webhooks, metrics })
