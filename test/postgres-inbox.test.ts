import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import t from 'tap'
import { migrationSql, postgresInbox, type PostgresInboxOptions } from '../src/postgres/inbox.js'
import { freePort } from './helpers/postgres-cluster.js'
import { freshSchema, postgresForTests } from './helpers/postgres.js'
import { postgresTestTables } from './helpers/postgres-tables.js'
import { silentServer } from './helpers/silent-server.js'
import { delivery, event, sleep, until } from './inbox-contract/support.js'

t.test('postgresInbox options are checked at construction, each message naming its option', async (t) => {
  const connectionString = 'postgres://localhost/db'
  const refused = (options: unknown, message: RegExp): void => {
    t.throws(() => postgresInbox(options as PostgresInboxOptions), { name: 'WebhookOptionsError', message })
  }
  refused(undefined, /"pool" or "connectionString"/)
  refused({}, /exactly one of "pool".*"connectionString"/)
  refused({ connectionString, pool: new pg.Pool() }, /exactly one of "pool"/)
  refused({ pool: {} }, /"pool" must be a pg Pool/)
  refused({ connectionString: '' }, /"connectionString" must be a non-empty string/)
  refused({ connectionString, schema: 'Bad-Name' }, /"schema" must be a lower-case SQL name/)
  refused({ connectionString, migrate: 'yes' }, /"migrate" must be true or false/)
  refused({ connectionString, handlerSynchronousCommit: 1 }, /"handlerSynchronousCommit" must be true or false/)
  refused({ connectionString, acceptTimeoutMs: 0 }, /"acceptTimeoutMs" must be a positive integer, got 0/)
  refused({ connectionString, groupCommitMs: 200 }, /"groupCommitMs" must be at most 50/)
  refused({ connectionString, pollIntervalMs: 1 }, /"pollIntervalMs" must be an integer of at least 10/)
  refused({ connectionString, retentionSeconds: -1 }, /"retentionSeconds" must be a positive integer/)
  refused({ connectionString, acceptTimeout: 100 }, /unknown option "acceptTimeout"; did you mean "acceptTimeoutMs"\?/)
  refused({ connectionString, idleInTransactionTimeoutMs: 500 }, /"idleInTransactionTimeoutMs" must be 0 \(no limit\) or at least 1000, got 500/)
  refused({ connectionString, idleInTransactionTimeoutMs: -1 }, /"idleInTransactionTimeoutMs" must be a non-negative integer/)
  t.ok(postgresInbox({ connectionString, idleInTransactionTimeoutMs: 0 }), 'an idle limit of 0 turns it off')
  t.ok(postgresInbox({ connectionString }), 'a connection string alone is enough')
})

t.test('migrate --print SQL names the schema and records its version', async (t) => {
  const sql = migrationSql('billing_inbox')
  t.match(sql, /CREATE SCHEMA IF NOT EXISTS "billing_inbox"/)
  t.match(sql, /CREATE TABLE "billing_inbox"\.events/)
  t.match(sql, /INSERT INTO "billing_inbox"\.migrations \(version\) VALUES \(1\)/)
  t.match(sql, /^BEGIN;$/m)
  t.match(sql, /^COMMIT;$/m)
})

t.test('loaded() imports pg without reaching the server, and never rejects', async (t) => {
  const refused = postgresInbox({ connectionString: `postgres://sir@127.0.0.1:${await freePort()}/postgres`, acceptTimeoutMs: 200 })
  t.equal(await refused.loaded(), undefined, 'no server listening')
  // A server that never answers: had loaded() waited for the database it would not resolve.
  const silent = postgresInbox({ connectionString: `postgres://sir@127.0.0.1:${await silentServer(t)}/postgres`, acceptTimeoutMs: 200 })
  t.equal(await silent.loaded(), undefined, 'a server that never answers')
})

const postgres = await postgresForTests(t)
if (postgres.url === undefined) {
  t.test(`Postgres inbox tests against a server skipped: no PostgreSQL (${postgres.reason})`, async () => {})
} else {
  const url = postgres.url
  const admin = new pg.Pool({ connectionString: url, max: 4 })
  t.teardown(() => admin.end())

  const { receiverWith: receiverOn, userTable, rowsFor } = postgresTestTables(admin)

  t.test('a handler that throws three times, then succeeds, leaves exactly one row; a handler that succeeded is not run again', async (t) => {
    const schema = freshSchema()
    const table = await userTable(t, schema)
    const webhooks = receiverOn(t, postgresInbox({ connectionString: url, schema }))
    const attempts: number[] = []
    let steadyRuns = 0
    webhooks.on('action.completed', async function steady (evt, { transaction }) {
      steadyRuns++
      await transaction.query(`INSERT INTO ${table} VALUES ($1, 'steady')`, [evt.id])
    })
    webhooks.on('action.completed', async function flaky (evt, { attempt, transaction }) {
      attempts.push(attempt)
      await transaction.query(`INSERT INTO ${table} VALUES ($1, 'flaky')`, [evt.id])
      if (attempt <= 3) throw new Error(`flaky failure ${attempt}`)
    })
    t.equal((await webhooks.receive(delivery(event('evt_flaky')))).status, 200)
    await until(async () => (await webhooks.inbox.outcome('evt_flaky'))?.state === 'done', 'the event to be done')
    t.same(attempts, [1, 2, 3, 4])
    t.equal(steadyRuns, 1, 'the handler that committed on attempt 1 is not run again')
    t.same(await rowsFor(table, 'evt_flaky'), ['flaky', 'steady'], 'one row per handler: the failed attempts\' writes were rolled back')
    const outcome = await webhooks.inbox.outcome('evt_flaky')
    t.equal(outcome?.attempts, 4)
    t.match(outcome?.lastError, /flaky: Error: flaky failure 3/)
  })

  t.test('Kysely on `transaction` (as docs/deployment.md shows it) writes in the inbox\'s transaction', async (t) => {
    const schema = freshSchema()
    const table = await userTable(t, schema)
    const webhooks = receiverOn(t, postgresInbox({ connectionString: url, schema }))
    let attempts = 0
    webhooks.on('action.completed', async function viaKysely (evt, { transaction }) {
      attempts++
      const client = { query: transaction.query.bind(transaction), release () {} }
      const pool = { connect: async () => client, end: async () => {}, options: {} }
      const db = new Kysely<Record<string, { event_id: string, handler: string }>>({ dialect: new PostgresDialect({ pool }) })
      await db.insertInto(table).values({ event_id: evt.id, handler: 'kysely' }).execute()
      if (attempts === 1) throw new Error('after the insert')
    })
    await webhooks.receive(delivery(event('evt_kysely')))
    await until(async () => (await webhooks.inbox.outcome('evt_kysely'))?.state === 'done', 'the event to be done')
    t.equal(attempts, 2)
    t.same(await rowsFor(table, 'evt_kysely'), ['kysely'], 'the first attempt\'s row was rolled back with it')
  })

  t.test('handler transactions skip the WAL flush unless handlerSynchronousCommit is set', async (t) => {
    const settings: string[] = []
    for (const handlerSynchronousCommit of [false, true]) {
      const schema = freshSchema()
      t.teardown(() => admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
      const webhooks = receiverOn(t, postgresInbox({ connectionString: url, schema, handlerSynchronousCommit }))
      webhooks.on('action.completed', async function readSetting (_evt, { transaction }) {
        settings.push((await transaction.query<{ synchronous_commit: string }>('SHOW synchronous_commit')).rows[0]!.synchronous_commit)
      })
      await webhooks.receive(delivery(event('evt_setting')))
      await until(() => settings.length === (handlerSynchronousCommit ? 2 : 1), 'the handler')
    }
    t.same(settings, ['off', 'on'])
  })

  t.test('a handler that swallows a failed query has failed: its transaction cannot commit, so it is retried', async (t) => {
    const schema = freshSchema()
    const table = await userTable(t, schema)
    const webhooks = receiverOn(t, postgresInbox({ connectionString: url, schema }))
    const attempts: number[] = []
    webhooks.on('action.completed', async function careless (evt, { attempt, transaction }) {
      attempts.push(attempt)
      await transaction.query(`INSERT INTO ${table} VALUES ($1, 'careless')`, [evt.id])
      if (attempt === 1) await transaction.query('SELECT * FROM no_such_table').catch(() => {})
    })
    await webhooks.receive(delivery(event('evt_careless')))
    await until(async () => (await webhooks.inbox.outcome('evt_careless'))?.state === 'done', 'the event to be done')
    t.same(attempts, [1, 2])
    t.same(await rowsFor(table, 'evt_careless'), ['careless'])
    t.match((await webhooks.inbox.outcome('evt_careless'))?.lastError, /current transaction is aborted/)
  })

  t.test('deliveries that arrive together share one INSERT and one commit', async (t) => {
    const schema = freshSchema()
    t.teardown(() => admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
    const pool = new pg.Pool({ connectionString: url, max: 20 })
    t.teardown(() => pool.end())
    let batches = 0
    pool.on('connect', (client) => {
      const query = client.query.bind(client) as (...args: unknown[]) => unknown
      client.query = ((...args: unknown[]) => {
        if (typeof args[0] === 'string' && args[0].includes('unnest(')) batches++
        return query(...args)
      }) as typeof client.query
    })
    const webhooks = receiverOn(t, postgresInbox({ pool, schema, groupCommitMs: 5 }))
    webhooks.on('action.completed', function noop () {})
    const results = await Promise.all(Array.from({ length: 50 }, async (_, index) => await webhooks.receive(delivery(event(`evt_group_${index}`)))))
    t.ok(results.every((result) => result.code === 'ACCEPTED'), 'every delivery is accepted')
    t.ok(batches >= 1 && batches <= 5, `50 deliveries took ${batches} INSERTs, not 50`)
    const { rows } = await admin.query(`SELECT count(*)::integer AS n FROM ${schema}.events`)
    t.equal(rows[0].n, 50)
    await webhooks.close()
    t.equal((await pool.query('SELECT 1 AS one')).rows[0].one, 1, 'the app\'s pool is not ended by close()')
  })

  t.test('a store slower than acceptTimeoutMs gets 503 and records nothing', async (t) => {
    const schema = freshSchema()
    t.teardown(() => admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
    const webhooks = receiverOn(t, postgresInbox({ connectionString: url, schema, acceptTimeoutMs: 300 }))
    t.equal((await webhooks.receive(delivery(event('evt_before')))).status, 200, 'the inbox has started')
    const locker = await admin.connect()
    t.teardown(() => { locker.release() })
    await locker.query('BEGIN')
    await locker.query(`LOCK TABLE ${schema}.events IN ACCESS EXCLUSIVE MODE`)
    const result = await webhooks.receive(delivery(event('evt_slow')))
    t.equal(result.status, 503)
    t.equal(result.code, 'INBOX_UNAVAILABLE')
    t.ok(result.headers['retry-after'], 'with Retry-After')
    t.equal(webhooks.inbox.health().status, 'degraded', 'health says so while the store fails')
    await locker.query('COMMIT')
    await sleep(300)
    t.equal(await webhooks.inbox.outcome('evt_slow'), undefined, 'the INSERT that finished late was rolled back')
    t.equal((await webhooks.receive(delivery(event('evt_slow')))).code, 'ACCEPTED', 'the sender\'s retry is accepted')
    t.same(webhooks.inbox.health(), { status: 'ok', reasons: [] }, 'health is ok again')
  })

  t.test('a database that cannot be reached: 503 for every delivery, health says why', async (t) => {
    const port = await freePort()
    const webhooks = receiverOn(t, postgresInbox({ connectionString: `postgres://sir@127.0.0.1:${port}/postgres`, schema: freshSchema(), pollIntervalMs: 50 }))
    const result = await webhooks.receive(delivery(event('evt_nowhere')))
    t.equal(result.status, 503)
    t.equal(result.code, 'INBOX_UNAVAILABLE')
    const health = webhooks.inbox.health()
    t.equal(health.status, 'degraded')
    t.match(health.reasons.join('\n'), /ECONNREFUSED|connect/)
  })

  t.test('many instances starting at once on a new schema migrate it once', async (t) => {
    const schema = freshSchema()
    t.teardown(() => admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
    const receivers = Array.from({ length: 6 }, () => receiverOn(t, postgresInbox({ connectionString: url, schema })))
    const results = await Promise.all(receivers.map(async (webhooks, index) => await webhooks.receive(delivery(event(`evt_start_${index}`)))))
    t.same(results.map((result) => result.status), [200, 200, 200, 200, 200, 200])
    const { rows } = await admin.query(`SELECT version FROM ${schema}.migrations ORDER BY version`)
    t.same(rows, [{ version: 1 }, { version: 2 }, { version: 3 }, { version: 4 }, { version: 5 }, { version: 6 }])
  })

  t.test('tables at version 1 are brought to the current version (flow control, ordering, the event record, flow waits) with their events kept; --from 1 SQL does it for migrate: false', async (t) => {
    for (const how of ['at start', 'printed SQL'] as const) {
      const schema = freshSchema()
      t.teardown(() => admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
      // Version 1 as a release before flow control left it, with an event waiting.
      await admin.query(migrationSql(schema))
      await admin.query(`DROP FUNCTION ${schema}.sir_claim_ordered, ${schema}.sir_keys_moved_on; DELETE FROM ${schema}.migrations WHERE version = 6; ALTER TABLE ${schema}.events DROP COLUMN wait_reason, DROP COLUMN wait_handler; DELETE FROM ${schema}.migrations WHERE version = 5; ALTER TABLE ${schema}.events DROP COLUMN stale, DROP COLUMN skipped; DELETE FROM ${schema}.migrations WHERE version = 4; DROP TABLE ${schema}.ordering_keys; DROP SEQUENCE ${schema}.events_order_seq; ALTER TABLE ${schema}.events DROP COLUMN ordering_key, DROP COLUMN created_at_ms, DROP COLUMN order_seq; DELETE FROM ${schema}.migrations WHERE version = 3`)
      await admin.query(`DROP TABLE ${schema}.flow_buckets, ${schema}.flow_paused; ALTER TABLE ${schema}.events DROP COLUMN flow, DROP COLUMN attempt_log; DELETE FROM ${schema}.migrations WHERE version = 2`)
      await admin.query(`INSERT INTO ${schema}.events (id, type, body, received_at, next_attempt_at) VALUES ('evt_v1', 'action.completed', $1, 1, 1)`, [JSON.stringify(event('evt_v1'))])
      if (how === 'printed SQL') await admin.query(migrationSql(schema, 1))
      const webhooks = receiverOn(t, postgresInbox({ connectionString: url, schema, migrate: how === 'at start', pollIntervalMs: 100 }))
      const ran: string[] = []
      webhooks.on('action.completed', async function creditTokens (evt) { ran.push(evt.id) }, { name: 'creditTokens', rate: { perSecond: 50 } })
      await until(() => ran.includes('evt_v1'), `the version 1 event to run (${how})`)
      const { rows } = await admin.query(`SELECT version FROM ${schema}.migrations ORDER BY version`)
      t.same(rows, [{ version: 1 }, { version: 2 }, { version: 3 }, { version: 4 }, { version: 5 }, { version: 6 }], how)
    }
  })

  t.test('migrate: false needs the tables; the printed SQL makes them', async (t) => {
    const schema = freshSchema()
    t.teardown(() => admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
    const refused = receiverOn(t, postgresInbox({ connectionString: url, schema, migrate: false }))
    t.equal((await refused.receive(delivery(event('evt_no_tables')))).status, 503)
    t.match(refused.log.find((entry) => entry.level === 'error')?.fields, { err: { message: /tables in schema ".*" are missing.*migrate --print/ } })
    await admin.query(migrationSql(schema))
    const webhooks = receiverOn(t, postgresInbox({ connectionString: url, schema, migrate: false }))
    t.equal((await webhooks.receive(delivery(event('evt_tables')))).status, 200)
  })

  t.test('an event committed by another process wakes this one through NOTIFY, also after its LISTEN connection was cut', async (t) => {
    const schema = freshSchema()
    t.teardown(() => admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
    // Polling once a minute: only a notification can start these events in time.
    const webhooks = receiverOn(t, postgresInbox({ connectionString: url, schema, pollIntervalMs: 60_000 }))
    const handled: string[] = []
    webhooks.on('action.completed', function record (evt) { handled.push(evt.id) })
    t.equal((await webhooks.receive(delivery(event('evt_local')))).status, 200)
    await until(() => handled.length === 1, 'the local event')
    const insertElsewhere = async (id: string): Promise<void> => {
      await admin.query(`INSERT INTO ${schema}.events (id, type, body, received_at, next_attempt_at) VALUES ($1, 'action.completed', $2, $3, $3)`,
        [id, JSON.stringify(event(id)), Date.now()])
      await admin.query('SELECT pg_notify($1, \'\')', [`${schema}_events`])
    }
    await insertElsewhere('evt_elsewhere')
    await until(() => handled.includes('evt_elsewhere'), 'the notified event', 5_000)
    const { rowCount } = await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", [`sir-webhooks control ${schema}`])
    t.equal(rowCount, 1, 'the control connection was cut')
    await until(async () => (await admin.query("SELECT 1 FROM pg_stat_activity WHERE application_name = $1", [`sir-webhooks control ${schema}`])).rowCount === 1, 'the control connection to come back', 5_000)
    await insertElsewhere('evt_after_cut')
    await until(() => handled.includes('evt_after_cut'), 'the event notified after the reconnection', 5_000)
  })

  t.test('an event whose every attempt was cut short by a crash is dead-lettered instead of run again', async (t) => {
    const schema = freshSchema()
    t.teardown(() => admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
    const first = receiverOn(t, postgresInbox({ connectionString: url, schema }), { retry: { attempts: 2 } })
    t.equal((await first.receive(delivery(event('evt_doomed')))).status, 200)
    await first.close()
    // As if two processes had died mid-run: both attempts were counted, neither finished.
    await admin.query(`UPDATE ${schema}.events SET state = 'pending', finished_at = NULL WHERE id = 'evt_doomed'`)
    await admin.query(`INSERT INTO ${schema}.attempts VALUES ('evt_doomed', 2) ON CONFLICT (event_id) DO UPDATE SET started = 2`)
    const webhooks = receiverOn(t, postgresInbox({ connectionString: url, schema }), { retry: { attempts: 2 } })
    const dead: unknown[] = []
    let ran = 0
    webhooks.on('action.completed', function neverAgain () { ran++ })
    webhooks.onDeadLetter((entry) => { dead.push(entry) })
    await until(() => dead.length === 1, 'the dead letter')
    t.equal(ran, 0)
    t.match(dead[0], { reason: 'handler_failed', attempts: 2, error: { message: /stopped during each of 2 attempts/ } })
    t.equal((await webhooks.inbox.outcome('evt_doomed'))?.state, 'dead')
  })

  t.test('an inbox given to no receiver answers queries (an admin script), and not after close', async (t) => {
    const schema = freshSchema()
    t.teardown(() => admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
    const webhooks = receiverOn(t, postgresInbox({ connectionString: url, schema }))
    webhooks.on('action.completed', function noop () {})
    await webhooks.receive(delivery(event('evt_admin')))
    await until(async () => (await webhooks.inbox.outcome('evt_admin'))?.state === 'done', 'the event to be done')
    const script = postgresInbox({ connectionString: url, schema })
    t.match(await script.outcome('evt_admin'), { id: 'evt_admin', state: 'done', attempts: 1 })
    t.same(await script.deadLetters(), [])
    await script.close(0)
    await t.rejects(script.outcome('evt_admin'), /closed/)
  })

  t.test('purge deletes done events past retention and dead ones past dead-letter retention', async (t) => {
    const schema = freshSchema()
    t.teardown(() => admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
    let now = Date.now()
    const webhooks = receiverOn(t, postgresInbox({ connectionString: url, schema, retentionSeconds: 60, deadLetterRetentionSeconds: 600 }), { clock: () => now, retry: { attempts: 1 } })
    webhooks.on('action.completed', function maybe (evt) { if (evt.id === 'evt_bad') throw new Error('bad') })
    await webhooks.receive(delivery(event('evt_good')))
    await webhooks.receive(delivery(event('evt_bad')))
    await until(async () => (await webhooks.inbox.outcome('evt_good'))?.state === 'done' && (await webhooks.inbox.outcome('evt_bad'))?.state === 'dead', 'both outcomes')
    t.same(await webhooks.inbox.purge(), { done: 0, dead: 0 }, 'nothing is old enough yet')
    now += 61_000
    t.same(await webhooks.inbox.purge(), { done: 1, dead: 0 })
    t.equal(await webhooks.inbox.outcome('evt_good'), undefined)
    now += 600_000
    t.same(await webhooks.inbox.purge(), { done: 0, dead: 1 })
    const { rows } = await admin.query(`SELECT (SELECT count(*) FROM ${schema}.handled)::integer AS handled, (SELECT count(*) FROM ${schema}.attempts)::integer AS attempts`)
    t.same(rows, [{ handled: 0, attempts: 0 }], 'their handler and attempt records went with them')
  })
}
