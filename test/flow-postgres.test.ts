// Flow control on the Postgres inbox: the scenarios every inbox with flow control
// passes, then what only a shared store can show: two receivers on one schema
// (two Webhooks instances, two pools, as two machines) share one rate, one
// concurrency and one pause; a RetryLater's writes are rolled back and its
// deferral uses no attempt; exactly-once holds for a handler deferred then run.
import pg from 'pg'
import t, { type Test } from 'tap'
import { RetryLater, Webhooks, type WebhooksOptions } from '../src/index.js'
import { postgresInbox, type PostgresInbox } from '../src/postgres/inbox.js'
import { runFlowScenarios } from './flow/scenarios.js'
import { freshSchema, postgresForTests } from './helpers/postgres.js'
import { captureLogger, delivery, event, SECRET, sleep, until } from './inbox-contract/support.js'

/** A receiver typed for its Postgres inbox: handlers get `transaction`. */
function pgReceiver (inbox: PostgresInbox, options: Partial<WebhooksOptions<PostgresInbox>> = {}): Webhooks<PostgresInbox> {
  return new Webhooks<PostgresInbox>({ secret: SECRET, retry: { attempts: 3, minDelayMs: 5, maxDelayMs: 20 }, closeGraceMs: 2_000, logger: captureLogger(), inbox, ...options })
}

const postgres = await postgresForTests(t)
if (postgres.url === undefined) {
  t.plan(0, `Postgres flow control skipped: ${postgres.reason}`)
} else {
  const connectionString = postgres.url
  // A schema of its own per test: tests share one server and must not see each other's events.
  runFlowScenarios(t, { name: 'postgres', inbox: () => postgresInbox({ connectionString, schema: freshSchema('flow') }) })

  const db = new pg.Pool({ connectionString, max: 2 })
  t.teardown(async () => { await db.end() })

  /** Two receivers on one schema, each with a pool of its own. */
  function pair (t: Test, options: Partial<WebhooksOptions<PostgresInbox>> = {}): { a: Webhooks<PostgresInbox>, b: Webhooks<PostgresInbox>, schema: string } {
    const schema = freshSchema('flow_pair')
    const a = pgReceiver(postgresInbox({ connectionString, schema, pollIntervalMs: 200 }), options)
    const b = pgReceiver(postgresInbox({ connectionString, schema, pollIntervalMs: 200 }), options)
    t.teardown(async () => { await Promise.all([a.close(), b.close()]) })
    return { a, b, schema }
  }

  t.test('postgres: two receivers on one schema share one rate of 20/s', async (t) => {
    const { a, b } = pair(t)
    const runs: Array<{ by: string, at: number }> = []
    for (const [by, webhooks] of [['a', a], ['b', b]] as const) {
      webhooks.on('action.completed', async function callPartner () { runs.push({ by, at: Date.now() }) }, { name: 'callPartner', rate: { perSecond: 20, burst: 1 } })
    }
    const count = 81
    for (let index = 0; index < count; index++) {
      t.equal((await (index % 2 === 0 ? a : b).receive(delivery(event(`evt_pg_rate_${index}`)))).status, 200)
    }
    await until(() => runs.length === count, 'every event to run', 60_000)
    const rate = (runs.length - 1) / (((runs.at(-1)?.at ?? 0) - (runs[0]?.at ?? 0)) / 1000)
    // 80 intervals of 50 ms: 4 s. A bucket per receiver would give about 40/s; unpaced, hundreds.
    t.ok(rate >= 12 && rate <= 28, `measured ${rate.toFixed(2)} runs/s over both receivers for one limit of 20/s`)
    t.ok(runs.some((run) => run.by === 'a') && runs.some((run) => run.by === 'b'), `both receivers ran some (${runs.filter((run) => run.by === 'a').length} on a)`)
  })

  t.test('postgres: pause() on one receiver pauses the other; its deliveries are still 2xx; resume() on the other drains', async (t) => {
    const { a, b, schema } = pair(t)
    const ran: string[] = []
    for (const webhooks of [a, b]) webhooks.on('action.completed', async function creditTokens (event) { ran.push(event.id) }, { name: 'creditTokens' })
    await a.pause()
    t.equal(a.health().status, 'paused')
    // NOTIFY reaches the other receiver at once; the 500 ms refresh would too, later.
    await until(() => b.health().status === 'paused', 'the other receiver to see the pause', 5_000)
    t.match(b.health(), { status: 'paused', reasons: [/every handler is paused/] })
    for (let index = 0; index < 6; index++) {
      t.equal((await (index % 2 === 0 ? a : b).receive(delivery(event(`evt_pg_pause_${index}`)))).status, 200, 'answered 2xx while paused')
    }
    // A receiver started now (a deploy's new instance) reads the pause before it claims anything.
    const late = pgReceiver(postgresInbox({ connectionString, schema, pollIntervalMs: 200 }))
    t.teardown(() => late.close())
    late.on('action.completed', async function creditTokens (event) { ran.push(event.id) }, { name: 'creditTokens' })
    await sleep(1_200)
    t.same(ran, [], 'nothing ran on any receiver, the one started while paused included')
    t.equal(late.health().status, 'paused')
    t.equal((await b.inbox.counts())?.pending, 6, 'stored, waiting')
    t.ok((b.stats().flow.oldestWaitingMs ?? 0) >= 1_000 || (a.stats().flow.oldestWaitingMs ?? 0) >= 1_000, 'the age of the oldest waiting event is reported')
    await b.resume()
    await until(() => ran.length === 6, 'resume() on the other receiver to drain every event', 15_000)
    await until(() => a.health().status === 'ok', 'the first receiver to see the resume', 5_000)
    // By name too: paused on b, not run on a.
    await b.pause('creditTokens')
    await until(() => a.health().status === 'paused', 'the handler pause to reach the other receiver', 5_000)
    await a.receive(delivery(event('evt_pg_pause_named')))
    await sleep(1_200)
    t.notOk(ran.includes('evt_pg_pause_named'), 'the handler paused by name ran nowhere')
    await a.resume('creditTokens')
    await until(() => ran.includes('evt_pg_pause_named'), 'the event to run once resumed', 15_000)
  })

  t.test('postgres: concurrency 1 is shared by two receivers: no two runs overlap, as the database recorded them', async (t) => {
    const { a, b, schema } = pair(t, { concurrency: 5 })
    await until(() => a.health().status === 'ok' && b.health().status === 'ok', 'both receivers to start')
    await db.query(`CREATE TABLE ${schema}.ledger_runs (event_id text PRIMARY KEY, by text NOT NULL, started_at timestamptz NOT NULL, ended_at timestamptz)`)
    let runs = 0
    for (const [by, webhooks] of [['a', a], ['b', b]] as const) {
      webhooks.on('action.completed', async function writeLedger (event, { transaction, attempt }) {
        t.equal(attempt, 1, 'waiting for a slot uses no attempt')
        await transaction.query(`INSERT INTO ${schema}.ledger_runs (event_id, by, started_at) VALUES ($1, $2, clock_timestamp())`, [event.id, by])
        await sleep(40)
        await transaction.query(`UPDATE ${schema}.ledger_runs SET ended_at = clock_timestamp() WHERE event_id = $1`, [event.id])
        runs += 1
      }, { name: 'writeLedger', concurrency: 1 })
    }
    const count = 16
    for (let index = 0; index < count; index++) {
      t.equal((await (index % 2 === 0 ? a : b).receive(delivery(event(`evt_pg_conc_${index}`)))).status, 200)
    }
    await until(async () => (await a.inbox.counts())?.done === count, 'every event to be done', 60_000)
    const { rows } = await db.query<{ by: string, started: number, ended: number }>(
      `SELECT by, extract(epoch FROM started_at) * 1000 AS started, extract(epoch FROM ended_at) * 1000 AS ended FROM ${schema}.ledger_runs ORDER BY started_at`)
    t.equal(rows.length, count, 'one committed run per event')
    t.equal(runs, count, 'no run more than once')
    const overlaps = rows.slice(1).filter((row, index) => Number(row.started) < Number(rows[index]?.ended))
    t.same(overlaps, [], 'each run started after the one before it ended')
    t.ok(rows.some((row) => row.by === 'a') && rows.some((row) => row.by === 'b'), `both receivers ran some (${rows.filter((row) => row.by === 'a').length} on a)`)
  })

  t.test('postgres: a receiver whose connection dies frees its concurrency slot for the others', async (t) => {
    const { a, b, schema } = pair(t)
    let unblock = (): void => {}
    const blocked = new Promise<void>((resolve) => { unblock = resolve })
    t.teardown(() => { unblock() })
    const started: string[] = []
    // Either receiver may claim the first event (the one that accepted it has no
    // claim on it): whichever does holds the one slot until the test ends.
    for (const [name, receiver] of [['a', a], ['b', b]] as const) {
      receiver.on('action.completed', async function writeLedger (event) {
        started.push(`${name}:${event.id}`)
        if (event.id === 'evt_pg_slot_held') await blocked
      }, { name: 'writeLedger', concurrency: 1 })
    }
    await until(() => a.health().status === 'ok' && b.health().status === 'ok', 'both receivers to start')
    t.equal((await a.receive(delivery(event('evt_pg_slot_held')))).status, 200)
    await until(() => started.some((run) => run.endsWith(':evt_pg_slot_held')), 'the run that holds the slot to start')
    const holder = started[0]?.slice(0, 1)
    const other = holder === 'a' ? 'b' : 'a'
    t.equal((await b.receive(delivery(event('evt_pg_slot_waits')))).status, 200)
    await sleep(800)
    t.same(started, [`${holder}:evt_pg_slot_held`], 'the second event waits: the one slot is held by the first\'s run')
    // As if the holder's host died: the server ends the session that holds the slot's advisory lock.
    const sessions = await db.query<{ pid: number }>(`
      SELECT l.pid FROM pg_locks l JOIN pg_stat_activity s ON s.pid = l.pid
      WHERE l.locktype = 'advisory' AND s.application_name = $1`, [`sir-webhooks control ${schema}`])
    t.equal(sessions.rows.length, 1, 'one session holds the slot')
    await db.query('SELECT pg_terminate_backend($1)', [sessions.rows[0]?.pid])
    await until(() => started.includes(`${other}:evt_pg_slot_waits`), 'the other receiver to run once the slot was freed', 10_000)
  })

  t.test('postgres: RetryLater rolls back the handler\'s writes and uses no attempt; exactly-once holds for a handler deferred then run; bounded, then a failure', async (t) => {
    const schema = freshSchema('flow_later')
    const webhooks = pgReceiver(postgresInbox({ connectionString, schema, pollIntervalMs: 200 }), {
      retry: { attempts: 1, minDelayMs: 5, maxDelayMs: 5 },
      retryLater: { maxDeferrals: 2, maxDeferredMs: 60_000 }
    })
    t.teardown(() => webhooks.close())
    await until(() => webhooks.health().status === 'ok', 'the receiver to start')
    await db.query(`CREATE TABLE ${schema}.writes (n serial PRIMARY KEY, event_id text NOT NULL, handler text NOT NULL)`)
    const calls: Array<{ id: string, handler: string, attempt: number }> = []
    const deadLetters: Array<{ id: string, handler: string | undefined, attempts: number }> = []
    webhooks.onDeadLetter((dead) => { deadLetters.push({ id: dead.event.id, handler: dead.handler, attempts: dead.attempts }) })
    webhooks.on('action.completed', async function ledger (event, { transaction, attempt }) {
      calls.push({ id: event.id, handler: 'ledger', attempt })
      await transaction.query(`INSERT INTO ${schema}.writes (event_id, handler) VALUES ($1, 'ledger')`, [event.id])
    }, { name: 'ledger' })
    webhooks.on('action.completed', async function callPartner (event, { transaction, attempt }) {
      calls.push({ id: event.id, handler: 'callPartner', attempt })
      await transaction.query(`INSERT INTO ${schema}.writes (event_id, handler) VALUES ($1, 'callPartner')`, [event.id])
      const runs = calls.filter((call) => call.id === event.id && call.handler === 'callPartner').length
      if (event.id === 'evt_pg_never' || runs <= 2) throw new RetryLater({ afterMs: 100 })
    }, { name: 'callPartner' })

    t.equal((await webhooks.receive(delivery(event('evt_pg_later')))).status, 200)
    await until(async () => (await webhooks.inbox.outcome('evt_pg_later'))?.state === 'done', 'the event to be done after two RetryLater', 20_000)
    const partnerRuns = calls.filter((call) => call.id === 'evt_pg_later' && call.handler === 'callPartner')
    t.same(partnerRuns.map((call) => call.attempt), [1, 1, 1], 'three runs, each attempt 1: with retry.attempts 1 a counted attempt would have dead-lettered it')
    const { rows } = await db.query<{ handler: string, count: number }>(`SELECT handler, count(*)::integer AS count FROM ${schema}.writes WHERE event_id = 'evt_pg_later' GROUP BY handler ORDER BY handler`)
    t.same(rows, [{ handler: 'callPartner', count: 1 }, { handler: 'ledger', count: 1 }], 'the deferred runs\' writes were rolled back; the handler that succeeded first ran once')
    t.equal(calls.filter((call) => call.id === 'evt_pg_later' && call.handler === 'ledger').length, 1, 'ledger was not run again while callPartner was deferred')
    const outcome = await webhooks.inbox.outcome('evt_pg_later')
    t.equal(outcome?.attempts, 1, 'one attempt used in all')
    t.match(outcome?.attemptLog, [
      { handler: 'callPartner', attempt: 1, outcome: 'deferred', error: /retryLater/, at: Date },
      { handler: 'callPartner', attempt: 1, outcome: 'deferred', error: /retryLater/ }
    ], 'the two deferred runs are in the attempt log')
    t.equal(outcome?.attemptLog?.length, 2)
    const carried = await db.query<{ flow: unknown }>(`SELECT flow FROM ${schema}.events WHERE id = 'evt_pg_later'`)
    t.equal(carried.rows[0]?.flow, null, 'done: no RetryLater record is carried any more')

    t.equal((await webhooks.receive(delivery(event('evt_pg_never')))).status, 200)
    await until(() => deadLetters.length === 1, 'the dead letter past the bound', 20_000)
    t.same(deadLetters, [{ id: 'evt_pg_never', handler: 'callPartner', attempts: 1 }], 'dead-lettered once, after its one attempt')
    t.equal(calls.filter((call) => call.id === 'evt_pg_never' && call.handler === 'callPartner').length, 3, '2 deferrals (maxDeferrals), then a third run that counts as the failure')
    const dead = await webhooks.inbox.outcome('evt_pg_never')
    t.equal(dead?.state, 'dead')
    t.same(dead?.attemptLog?.map((run) => run.outcome), ['deferred', 'deferred', 'failed'])
    t.match(dead?.attemptLog?.at(-1)?.error, /RetryLater/)
    t.notOk(JSON.stringify(dead?.attemptLog).includes('"data"'), 'the attempt log holds no body')
    const never = await db.query<{ count: number }>(`SELECT count(*)::integer AS count FROM ${schema}.writes WHERE event_id = 'evt_pg_never' AND handler = 'callPartner'`)
    t.equal(never.rows[0]?.count, 0, 'no write of a RetryLater run committed')
    t.equal(webhooks.stats().handlers.retried, 0, 'no deferral is reported as a retry')
  })

  t.test('postgres: an error holding a lone surrogate is kept in the attempt log, written out (jsonb refuses it)', async (t) => {
    const webhooks = pgReceiver(postgresInbox({ connectionString, schema: freshSchema('flow_log'), pollIntervalMs: 200 }), { retry: { attempts: 1, minDelayMs: 5, maxDelayMs: 5 } })
    t.teardown(() => webhooks.close())
    webhooks.on('action.completed', async function surrogate () { throw new Error('bad\ud800news') }, { name: 'surrogate' })
    await webhooks.receive(delivery(event('evt_pg_surrogate')))
    await until(async () => (await webhooks.inbox.outcome('evt_pg_surrogate'))?.state === 'dead', 'the event to be dead')
    const outcome = await webhooks.inbox.outcome('evt_pg_surrogate')
    t.same(outcome?.attemptLog?.map((run) => run.error), ['Error: bad\\ud800news'])
    t.equal(outcome?.attempts, 1, 'dead after its own attempt, not after failed commits')
  })

  t.test('postgres: the attempt log keeps the newest 50 runs of an event', async (t) => {
    const schema = freshSchema('flow_log')
    const webhooks = pgReceiver(postgresInbox({ connectionString, schema, pollIntervalMs: 200 }), {
      retry: { attempts: 1, minDelayMs: 5, maxDelayMs: 5 },
      retryLater: { maxDeferrals: 60, maxDeferredMs: 60_000 }
    })
    t.teardown(() => webhooks.close())
    let runs = 0
    webhooks.on('action.completed', async function callPartner () {
      runs += 1
      throw new RetryLater({ afterMs: 1 })
    }, { name: 'callPartner' })
    await webhooks.receive(delivery(event('evt_pg_log')))
    await until(async () => (await webhooks.inbox.outcome('evt_pg_log'))?.state === 'dead', 'the event to die past 60 deferrals', 60_000)
    const log = (await webhooks.inbox.outcome('evt_pg_log'))?.attemptLog ?? []
    t.equal(runs, 61)
    t.equal(log.length, 50, 'the newest 50 of 61')
    t.equal(log.at(-1)?.outcome, 'failed', 'newest last: the failure past the bound')
    t.ok(log.every((run, index) => index === 0 || run.at.getTime() >= (log[index - 1]?.at.getTime() ?? 0)), 'oldest first')
  })
}
