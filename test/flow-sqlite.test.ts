import { join } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { RetryLater } from '../src/index.js'
import { sqliteInbox } from '../src/sqlite/inbox.js'
import { SCHEMA_VERSION } from '../src/sqlite/schema.js'
import { runFlowScenarios } from './flow/scenarios.js'
import { otelForTests } from './helpers/otel.js'
import { tempDir } from './inbox-contract/scenarios.js'
import { delivery, event, receiver, sleep, until } from './inbox-contract/support.js'
import { createOldEventsTable } from './helpers/sqlite-old-schema.js'

let files = 0
const dir = tempDir(t)
const freshInbox = (): ReturnType<typeof sqliteInbox> => sqliteInbox({ path: join(dir, `flow-${files++}.db`), pollIntervalMs: 50 })

runFlowScenarios(t, { name: 'sqlite', inbox: freshInbox })

t.test('sqlite: a deferred run keeps its attempt, and outcome() shows each deferred and failed run, the newest 50', async (t) => {
  const inbox = freshInbox()
  const webhooks = receiver(inbox, { retry: { attempts: 2, minDelayMs: 5, maxDelayMs: 5 }, retryLater: { maxDeferrals: 60, maxDeferredMs: 60_000 } })
  t.teardown(() => webhooks.close())
  const attempts: number[] = []
  webhooks.on('action.completed', async function callPartner (_event, { attempt }) {
    attempts.push(attempt)
    // The first three wait long enough for the row to be read between runs.
    throw attempts.length <= 60 ? new RetryLater({ afterMs: attempts.length <= 3 ? 400 : 0 }) : new Error('partner said no')
  }, { name: 'callPartner' })
  t.equal((await webhooks.receive(delivery(event('evt_log')))).status, 200)
  await until(async () => (await inbox.outcome('evt_log'))?.attemptLog?.length === 2, 'two deferrals recorded', 10_000)
  const early = await inbox.outcome('evt_log')
  t.equal(early?.state, 'pending')
  t.equal(early?.attempts, 0, 'no attempt used while deferred')
  t.match(early?.attemptLog?.[0], { handler: 'callPartner', attempt: 1, outcome: 'deferred', error: /deferred \(retryLater\)/ })
  t.ok(early?.attemptLog?.[0]?.at instanceof Date)
  await until(async () => (await inbox.outcome('evt_log'))?.state === 'dead', 'the dead letter', 30_000)
  const dead = await inbox.outcome('evt_log')
  t.same(attempts.slice(0, 61), Array(61).fill(1), '60 deferrals, then the first failure: all attempt 1')
  t.same(attempts.slice(61), [2], 'then the second attempt')
  t.equal(dead?.attempts, 2)
  const log = dead?.attemptLog ?? []
  t.equal(log.length, 50, 'bounded: the newest 50 of 62 runs')
  t.match(log.slice(-2), [{ outcome: 'failed', attempt: 1, error: 'Error: partner said no' }, { outcome: 'failed', attempt: 2, error: 'Error: partner said no' }])
  t.ok(log.slice(0, -2).every((record) => record.outcome === 'deferred'))
  t.notOk(JSON.stringify(log).includes('evt_log'), 'never the body')
})

t.test('sqlite: resume() starts a run paused by name at once, not after its wait', async (t) => {
  const webhooks = receiver(sqliteInbox({ path: join(dir, `flow-${files++}.db`) }))
  t.teardown(() => webhooks.close())
  const ran: number[] = []
  webhooks.on('action.completed', async function creditTokens () { ran.push(Date.now()) }, { name: 'creditTokens' })
  await webhooks.pause('creditTokens')
  await webhooks.receive(delivery(event('evt_paused_one')))
  await until(async () => (await webhooks.inbox.outcome?.('evt_paused_one'))?.attemptLog !== undefined, 'the run to be deferred')
  await sleep(300)
  t.same(ran, [])
  const resumedAt = Date.now()
  await webhooks.resume('creditTokens')
  await until(() => ran.length === 1, 'the run after resume()', 5_000)
  t.ok((ran[0] ?? Infinity) - resumedAt < 900, `ran ${(ran[0] ?? 0) - resumedAt} ms after resume(), within a poll`)
})

t.test('sqlite: with two handlers paused, resuming the one the run did not wait for starts it at once', async (t) => {
  const webhooks = receiver(sqliteInbox({ path: join(dir, `flow-${files++}.db`) }))
  t.teardown(() => webhooks.close())
  const ran: string[] = []
  webhooks.on('action.completed', async function ledger () { ran.push('ledger') }, { name: 'ledger' })
  webhooks.on('action.completed', async function email () { ran.push('email') }, { name: 'email' })
  await webhooks.pause('ledger')
  await webhooks.pause('email')
  await webhooks.receive(delivery(event('evt_two_paused')))
  await until(async () => (await webhooks.inbox.outcome?.('evt_two_paused'))?.attemptLog !== undefined, 'the runs to be deferred')
  const resumedAt = Date.now()
  // The row waits on the first paused handler (ledger); resuming email must reach it too.
  await webhooks.resume('email')
  await until(() => ran.includes('email'), 'email after its resume()', 5_000)
  t.ok(Date.now() - resumedAt < 3_000, `email ran ${Date.now() - resumedAt} ms after resume(), not after the 5-minute paused wait`)
  t.notOk(ran.includes('ledger'), 'ledger, still paused, did not run')
})

t.test('sqlite: a file of schema 2 is upgraded on open: its pending event runs under flow control', async (t) => {
  const path = join(dir, `flow-${files++}.db`)
  const old = new Database(path)
  // The table as schema 2 created it, with one pending event.
  createOldEventsTable(old, 2)
  old.exec('CREATE INDEX sir_webhook_events_due ON sir_webhook_events (state, next_attempt_at)')
  old.prepare("INSERT INTO sir_webhook_events (id, type, event, body, state, received_at, next_attempt_at) VALUES ('evt_v2', 'action.completed', '', ?, 'pending', 1000, 1000)")
    .run(Buffer.from(JSON.stringify(event('evt_v2'))))
  old.close()
  const inbox = sqliteInbox({ path, pollIntervalMs: 50 })
  const webhooks = receiver(inbox)
  t.teardown(() => webhooks.close())
  t.equal(inbox.oldestReceivedAt, 1000, 'the oldest pending event, read from the upgraded file')
  const ran: string[] = []
  webhooks.on('action.completed', async function callPartner (evt) { ran.push(evt.id) }, { name: 'callPartner', rate: { perSecond: 2, burst: 1 } })
  t.equal((await webhooks.receive(delivery(event('evt_v3')))).status, 200)
  await until(() => ran.length === 2, 'both events to run, paced', 10_000)
  t.same(ran.sort(), ['evt_v2', 'evt_v3'])
  const deferred = (await inbox.outcome(ran[1] === 'evt_v2' ? 'evt_v2' : 'evt_v3'))?.attemptLog
  t.ok(deferred === undefined || deferred.every((record) => record.outcome === 'deferred'), 'a run paced by the rate is recorded as deferred, never failed')
  await until(() => inbox.oldestReceivedAt === undefined, 'none pending: undefined')
  const check = new Database(path, { readonly: true })
  t.teardown(() => { check.close() })
  t.equal(check.pragma('user_version', { simple: true }), SCHEMA_VERSION)
})

t.test('sqlite: a pause is kept in the file: a receiver started after it is paused too, until resume()', async (t) => {
  const path = join(dir, `flow-${files++}.db`)
  const first = receiver(sqliteInbox({ path }))
  first.on('action.completed', async function creditTokens () {}, { name: 'creditTokens' })
  await first.pause()
  await first.close()
  const webhooks = receiver(sqliteInbox({ path, pollIntervalMs: 50 }))
  t.teardown(() => webhooks.close())
  const ran: string[] = []
  webhooks.on('action.completed', async function creditTokens (evt) { ran.push(evt.id) }, { name: 'creditTokens' })
  t.equal(webhooks.health().status, 'paused', 'paused from its start')
  t.equal((await webhooks.receive(delivery(event('evt_after_restart')))).status, 200)
  await sleep(500)
  t.same(ran, [], 'nothing ran')
  await webhooks.resume()
  await until(() => ran.length === 1, 'the run after resume()', 5_000)
})

t.test('sqlite: OpenTelemetry reports the oldest pending event\'s age from the file, and the deferrals by reason', async (t) => {
  const otel = otelForTests()
  t.teardown(() => otel.shutdown())
  const webhooks = receiver(sqliteInbox({ path: join(dir, `flow-${files++}.db`), pollIntervalMs: 50 }), { telemetry: { meterProvider: otel.meterProvider } })
  t.teardown(() => webhooks.close())
  let runs = 0
  webhooks.on('action.completed', async function callPartner () { runs += 1 }, { name: 'callPartner' })
  await webhooks.pause('callPartner')
  for (let index = 0; index < 3; index++) t.equal((await webhooks.receive(delivery(event(`evt_otel_sqlite_${index}`)))).status, 200)
  await sleep(400)
  const age = await otel.points('sir_webhooks.queue.oldest_age')
  t.equal(age.length, 1)
  t.ok(Number(age[0]?.value) >= 0.3, `the oldest event has waited ${String(age[0]?.value)} s`)
  const paused = (await otel.points('sir_webhooks.handler.deferred')).filter((point) => point.attributes['sir_webhooks.reason'] === 'paused')
  t.equal(paused.reduce((sum, point) => sum + Number(point.value), 0), 3, 'each run held by the pause counted once')
  await webhooks.resume('callPartner')
  await until(() => runs === 3, 'the backlog to drain')
})
