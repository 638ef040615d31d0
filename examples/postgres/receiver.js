// Shared by server.js (the web process) and worker.js (the worker-only process):
// one receiver on the Postgres inbox, with the same named handlers in both, as a
// durable inbox requires (it records which handlers of an event succeeded by name).
//
// Configuration, all from the environment:
//   DATABASE_URL        postgres://user:password@host:5432/database (required)
//   SIR_WEBHOOK_SECRET  the signing secret; while rotating, "new,old" (newest first)
//   SIR_SCHEMA          the inbox's schema (default sir_webhooks)
//   CONCURRENCY         events run at once by this process (default 10)
import pg from 'pg'
import { Webhooks } from 'sir-webhooks'
import { postgresInbox } from 'sir-webhooks/postgres'

export function createReceiver ({ logger, telemetry, acceptOnly = false }) {
  const connectionString = process.env.DATABASE_URL
  if (connectionString === undefined || connectionString === '') {
    process.stderr.write('DATABASE_URL is not set: give it the database the inbox\'s tables and schema.sql were applied to, e.g.\n' +
      '  DATABASE_URL=postgres://app@127.0.0.1:5432/app node examples/postgres/server.js\n')
    process.exit(1)
  }
  const secrets = (process.env.SIR_WEBHOOK_SECRET ?? '').split(',').map((secret) => secret.trim()).filter((secret) => secret !== '')
  if (secrets.length === 0) {
    process.stderr.write('SIR_WEBHOOK_SECRET is not set: give it the signing secret SIR Giving showed you (while rotating: "new,old").\n')
    process.exit(1)
  }
  const concurrency = Number(process.env.CONCURRENCY ?? 10)
  // Each event in progress holds a client, accepts up to 3 more and the wake-up
  // NOTIFY one: concurrency + 4, or the inbox runs fewer events at once (and warns).
  const pool = new pg.Pool({ connectionString, max: concurrency + 4, application_name: 'sir-webhooks example' })
  const webhooks = new Webhooks({
    secret: secrets.length === 1 ? secrets[0] : secrets,
    concurrency,
    logger,
    ...(telemetry === undefined ? {} : { telemetry }),
    // migrate: false: the tables come from `sir-webhooks migrate --print`, applied by
    // your migrations with the rest of your schema; the inbox checks their version.
    inbox: postgresInbox({ pool, schema: process.env.SIR_SCHEMA ?? 'sir_webhooks', migrate: false })
  })
  // A receiver without handlers only accepts: its events wait for a worker.
  if (!acceptOnly) registerHandlers(webhooks)
  // The pool is ours, not the inbox's ({ pool } is borrowed): end it after the receiver.
  return { webhooks, close: async () => { await webhooks.close(); await pool.end() } }
}

function registerHandlers (webhooks) {
  // `transaction` is the pg client of the transaction that also records this
  // handler's success: the row and "handled" commit together, or neither does.
  // ON CONFLICT: an event id older than the inbox's retention (7 days) would run again.
  webhooks.on('action.completed', async function creditTokens (event, { transaction }) {
    await transaction.query(
      'INSERT INTO credits (event_id, action_id, tokens) VALUES ($1, $2, $3) ON CONFLICT (event_id) DO NOTHING',
      [event.id, event.data.actionId, event.data.tokensDistributed]
    )
  })
  webhooks.on(['token_pool.low_balance', 'token_pool.depleted'], async function warnTokenPool (event, { log }) {
    log.warn({ data: event.data }, 'token pool needs attention')
  })
  webhooks.onDeadLetter((deadLetter) => {
    // Kept in the inbox as well: `sir-webhooks inbox dead` lists it, `inbox redrive` runs it again.
    webhooks.logger.error({ event: { id: deadLetter.event.id, type: deadLetter.event.type }, handler: deadLetter.handler, attempts: deadLetter.attempts },
      'dead letter: see it with sir-webhooks inbox show, run it again with inbox redrive once the cause is fixed')
  })
}
