import { unlinkSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import t, { type Test } from 'tap'
import { sqliteInbox, type SqliteInbox } from '../src/sqlite/inbox.js'
import { captureLogs, type CapturedLogs } from './helpers/logs.js'
import { gate } from './helpers/deliveries.js'
import { tempDir } from './inbox-contract/scenarios.js'
import { delivery, event, receiver, until } from './inbox-contract/support.js'

/**
 * Issue 20 item 14: bodies are never logged. An event whose data holds this
 * marker goes through every SQLite failure path that can be provoked here;
 * no log line may hold it.
 */
const MARKER = 'MARKER_7f3a_do_not_log'

function withMarker (id: string): Record<string, unknown> {
  return { ...event(id), data: { note: MARKER, [MARKER]: MARKER } }
}

function setUp (t: Test, options: { pollIntervalMs?: number, concurrency?: number } = {}): { path: string, inbox: SqliteInbox, webhooks: ReturnType<typeof receiver>, logs: CapturedLogs, other: Database.Database } {
  const path = join(tempDir(t), 'inbox.db')
  const inbox = sqliteInbox({ path, leaseMs: 200, pollIntervalMs: options.pollIntervalMs ?? 20 })
  const logs = captureLogs('debug')
  const webhooks = receiver(inbox, { logger: logs.logger, retry: { attempts: 2, minDelayMs: 5, maxDelayMs: 10 }, concurrency: options.concurrency ?? 10 })
  t.teardown(() => webhooks.close())
  const other = new Database(path)
  t.teardown(() => { other.close() })
  return { path, inbox, webhooks, logs, other }
}

function assertNoMarker (t: Test, logs: CapturedLogs, what: string): void {
  t.ok(logs.entries().length > 0, `${what}: something was logged`)
  const leaking = logs.text().split('\n').filter((line) => line.includes(MARKER) || line.includes('7f3a'))
  t.same(leaking, [], `${what}: no log line holds the marker`)
}

t.test('a failed accept (disk full, rolled back) and a failed statement log no body', async (t) => {
  const { webhooks, logs, other } = setUp(t)
  webhooks.on('action.completed', function record () {})
  other.exec(`CREATE TRIGGER full_disk BEFORE INSERT ON sir_webhook_events WHEN NEW.id = 'evt_full'
    BEGIN SELECT RAISE(ROLLBACK, 'database or disk is full'); END;
    CREATE TRIGGER refuse BEFORE INSERT ON sir_webhook_events WHEN NEW.id = 'evt_refused'
    BEGIN SELECT RAISE(ABORT, 'constraint failed'); END`)
  t.equal((await webhooks.receive(delivery(withMarker('evt_full')))).status, 503)
  t.equal((await webhooks.receive(delivery(withMarker('evt_refused')))).status, 503)
  t.ok(logs.entries().some((entry) => entry.msg === 'the SQLite inbox could not record the event'))
  assertNoMarker(t, logs, 'failed accepts')
})

t.test('handler errors, retries and the dead letter log no body', async (t) => {
  const { inbox, webhooks, logs } = setUp(t)
  webhooks.on('action.completed', function failing () { throw new Error('downstream refused') })
  t.equal((await webhooks.receive(delivery(withMarker('evt_failing')))).status, 200)
  await until(async () => (await inbox.outcome('evt_failing'))?.state === 'dead', 'the dead letter')
  t.ok(logs.entries().some((entry) => /dead-lettered/.test(String(entry.msg))))
  // A duplicate with another body is warned about, with no body either.
  t.equal((await webhooks.receive(delivery({ ...withMarker('evt_failing'), data: { note: `${MARKER}_2` } }))).status, 200)
  assertNoMarker(t, logs, 'handler failures')
})

t.test('a stored event that no longer parses is marked dead, and the parse error quotes none of it', async (t) => {
  // One slot: the first event holds it while the second's row is damaged behind it.
  const { inbox, webhooks, logs, other } = setUp(t, { pollIntervalMs: 60_000, concurrency: 1 })
  const release = gate()
  let runs = 0
  webhooks.on('action.completed', async function record () {
    runs++
    await release.promise
  })
  t.equal((await webhooks.receive(delivery(event('evt_holder')))).status, 200)
  await until(() => runs === 1, 'the first handler to start')
  t.equal((await webhooks.receive(delivery(withMarker('evt_damaged')))).status, 200)
  // JSON.parse's message would quote the text around the fault: `..."note":MARKER_7f3a...`.
  const damaged = `{"id":"evt_damaged","type":"action.completed","data":{"note":${MARKER}}}`
  other.prepare('UPDATE sir_webhook_events SET event = ? WHERE id = ?').run(damaged, 'evt_damaged')
  // Every copy the row holds: the bytes received, where the schema keeps them (2 and later).
  const columns = other.prepare<[], string>("SELECT name FROM pragma_table_info('sir_webhook_events')").pluck().all()
  if (columns.includes('body')) other.prepare('UPDATE sir_webhook_events SET body = ? WHERE id = ?').run(Buffer.from(damaged), 'evt_damaged')
  release.open()
  await until(async () => (await inbox.outcome('evt_damaged'))?.state === 'dead', 'the damaged event to be marked dead')
  t.equal(runs, 1, 'its handler never ran')
  t.match((await inbox.outcome('evt_damaged'))?.lastError, /the stored event could not be parsed \(\d+ bytes\)/)
  t.ok(logs.entries().some((entry) => entry.msg === 'the SQLite inbox cannot parse a stored event; it is marked dead without running'))
  assertNoMarker(t, logs, 'an unparsable row')
})

t.test('failing outcome writes and a file deleted under the receiver log no body', async (t) => {
  const { path, inbox, webhooks, logs, other } = setUp(t)
  webhooks.on('action.completed', function record () {})
  other.exec(`CREATE TRIGGER broken_outcomes BEFORE UPDATE OF state ON sir_webhook_events
    BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END`)
  t.equal((await webhooks.receive(delivery(withMarker('evt_unrecorded')))).status, 200)
  await until(() => logs.entries().some((entry) => entry.msg === 'the SQLite inbox could not record an outcome; the event will run again'), 'a failed outcome write')
  await until(() => inbox.health().status === 'degraded', 'the inbox to be degraded')
  t.equal((await webhooks.receive(delivery(withMarker('evt_while_degraded')))).status, 503)
  other.exec('DROP TRIGGER broken_outcomes')
  // Run again until writes work: done, or dead once its attempts ran out meanwhile.
  await until(async () => (await inbox.outcome('evt_unrecorded'))?.state !== 'pending', 'an outcome once writes work')
  unlinkSync(path)
  t.equal((await webhooks.receive(delivery(withMarker('evt_after_delete')))).status, 503)
  t.ok(logs.entries().some((entry) => /deleted or replaced/.test(String(entry.msg))))
  assertNoMarker(t, logs, 'failed outcome writes and a deleted file')
})
