import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import pg from 'pg'
import t from 'tap'
import { createEvent, sendDelivery } from '../src/testing/index.js'
import { ensureBuilt, runCli } from './cli/helpers.js'
import { startExampleProcess, until } from './helpers/example-process.js'
import { postgresForTests } from './helpers/postgres.js'

// docs/getting-started.md, followed step by step against a real Postgres with the
// runnable examples/postgres: the inbox's tables from `migrate --print`, the app's
// table from schema.sql, a web process that only accepts, a worker-only process
// that runs the handler, a delivery signed by the library's sender with the old
// secret of a rotation pair, the handler's row, the probes, and a dead letter
// replayed with `inbox redrive` once its cause is fixed.

ensureBuilt()

const NEW_SECRET = 'whsec_getting_started_new'
const OLD_SECRET = 'whsec_getting_started_old'
const schemaSql = readFileSync(new URL('../examples/postgres/schema.sql', import.meta.url), 'utf8')

const postgres = await postgresForTests(t)

t.test('getting started on Postgres: migrate, web + worker, a signed delivery, the row, probes, rotation and replay', {
  skip: postgres.url === undefined ? `no PostgreSQL (${postgres.reason})` : false,
  timeout: 240_000
}, async (t) => {
  // A database of its own: schema.sql creates "credits" where the app would.
  const admin = new pg.Client({ connectionString: postgres.url })
  await admin.connect()
  const database = `sir_getting_started_${randomUUID().replaceAll('-', '').slice(0, 12)}`
  await admin.query(`CREATE DATABASE ${database}`)
  const url = new URL(postgres.url as string)
  url.pathname = `/${database}`
  const databaseUrl = url.toString()
  const app = new pg.Client({ connectionString: databaseUrl })
  await app.connect()
  t.teardown(async () => {
    await app.end()
    // Without WITH (FORCE), which PostgreSQL 12 lacks: whatever the examples left open goes first.
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [database])
    await admin.query(`DROP DATABASE IF EXISTS ${database}`)
    await admin.end()
  })

  // Step: the inbox's tables, as `sir-webhooks migrate --print | psql "$DATABASE_URL"` applies them.
  const migration = await runCli(['migrate', '--print'])
  t.equal(migration.code, 0, 'migrate --print')
  await app.query(migration.stdout)

  // Step: a web process (accept only) and a worker, rotating: the new secret first, the old still accepted.
  const env = { DATABASE_URL: databaseUrl, SIR_WEBHOOK_SECRET: `${NEW_SECRET},${OLD_SECRET}` }
  const web = await startExampleProcess(t, 'postgres/server.js', { ...env, ACCEPT_ONLY: 'true' })
  const worker = await startExampleProcess(t, 'postgres/worker.js', env, { serves: false })
  const webhookUrl = web.url as string

  // A deploy that forgot schema.sql: the handler fails for good, and the event is kept as a dead letter.
  const early = createEvent('action.completed', { actionId: 'act_early', tokensDistributed: 7 })
  t.equal((await sendDelivery(webhookUrl, early, { secret: OLD_SECRET })).status, 200, 'accepted, signed with the old secret')
  const store = ['--store', databaseUrl, '--json']
  await until(async () => {
    const dead = await runCli(['inbox', 'dead', ...store])
    return dead.code === 0 && dead.stdout.includes(`"${early.id}"`)
  }, 120_000, 'the early event in `inbox dead`')
  // Logged by the worker's onDeadLetter, which may come a moment after the record is visible.
  await until(async () => /dead letter: see it with sir-webhooks inbox show/.test(worker.output()), 30_000, 'the worker to log the dead letter')
  t.match(worker.output(), /dead letter: see it with sir-webhooks inbox show/, 'the worker logs the dead letter')

  // Step: the app's table, then the replay.
  await app.query(schemaSql)
  const redrive = await runCli(['inbox', 'redrive', early.id, '--store', databaseUrl])
  t.equal(redrive.code, 0, `inbox redrive: ${redrive.stderr}`)
  const credits = async (id: string): Promise<Array<{ action_id: string, tokens: number }>> =>
    (await app.query('SELECT action_id, tokens FROM credits WHERE event_id = $1', [id])).rows
  await until(async () => (await credits(early.id)).length === 1, 30_000, 'the replayed event\'s row')
  t.same(await credits(early.id), [{ action_id: 'act_early', tokens: 7 }], 'the replayed event wrote its row')

  // Step: a delivery with the new secret, its row, once even when delivered twice.
  const event = createEvent('action.completed', { actionId: 'act_getting_started', tokensDistributed: 50 })
  const first = await sendDelivery(webhookUrl, event, { secret: NEW_SECRET })
  t.equal(first.status, 200)
  await until(async () => (await credits(event.id)).length === 1, 30_000, 'the handler\'s row in credits')
  const again = await sendDelivery(webhookUrl, event, { secret: NEW_SECRET })
  t.equal(again.status, 200)
  t.match(again.body, /"duplicate":true/, 'a redelivery is a duplicate')
  t.same(await credits(event.id), [{ action_id: 'act_getting_started', tokens: 50 }], 'one row')
  const wrong = await sendDelivery(webhookUrl, createEvent('action.completed'), { secret: 'whsec_not_ours' })
  t.equal(wrong.status, 401, 'a secret that is neither is refused')

  // Step: probes, on the internal ports.
  for (const [name, process] of [['web', web], ['worker', worker]] as const) {
    const health = await fetch(`${process.internal}/health`)
    t.equal(health.status, 200, `${name} /health`)
    t.match(await health.json(), { status: 'ok', reasons: [] })
  }
  const stats = await runCli(['inbox', 'stats', ...store])
  t.match(JSON.parse(stats.stdout), { pending: 0, done: 2, dead: 0 }, 'inbox stats: both done, nothing dead')

  web.kill('SIGTERM')
  worker.kill('SIGTERM')
  t.equal(await web.exit, 0, 'the web process exits 0 on SIGTERM')
  t.equal(await worker.exit, 0, 'the worker exits 0 on SIGTERM')
})
