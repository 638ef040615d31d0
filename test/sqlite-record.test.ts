// What an event's record keeps on SQLite (issue 24's event page): the stale flag
// its handlers were told, the handlers that finished, and the listing by handler.
import { join } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { sqliteInbox } from '../src/sqlite/inbox.js'
import { SCHEMA_VERSION } from '../src/sqlite/schema.js'
import { createOldEventsTable } from './helpers/sqlite-old-schema.js'
import { tempDir } from './inbox-contract/scenarios.js'
import { delivery, receiver, until } from './inbox-contract/support.js'

const dir = tempDir(t)
let files = 0
const freshPath = (): string => join(dir, `record-${files++}.db`)

/** An event of `key` created `second` seconds after a fixed instant. */
function keyed (id: string, key: string, second: number): Record<string, unknown> {
  return { id, type: 'action.completed', createdAt: new Date(Date.UTC(2026, 4, 10, 9, 0, second)).toISOString(), data: { actionId: key } }
}
// As in docs/ordering.md: action events are keyed by their action, the others run unordered.
const byAction = { key: (event: { type: string, data: unknown }) => event.type.startsWith('action.') ? `action:${(event.data as { actionId: string }).actionId}` : undefined }

t.test('sqlite: the record keeps the stale flag its handlers were told and the handlers that finished; events({ handler }) finds what a handler failed on', async (t) => {
  const inbox = sqliteInbox({ path: freshPath(), pollIntervalMs: 50 })
  const webhooks = receiver(inbox, { ordering: byAction, retry: { attempts: 2, minDelayMs: 1, maxDelayMs: 2 } })
  t.teardown(() => webhooks.close())
  const told: string[] = []
  webhooks.on('action.completed', async function award (event, { ordering }) {
    told.push(`${event.id}:${String(ordering?.stale)}`)
    if (event.id === 'evt_old') throw new Error('no award for a reversed action')
  }, { name: 'award' })
  webhooks.on('action.completed', async function notify () {}, { name: 'notify' })
  await webhooks.receive(delivery(keyed('evt_new', 'a', 9)))
  await webhooks.idle()
  await webhooks.receive(delivery(keyed('evt_old', 'a', 3)))
  await webhooks.receive(delivery({ ...keyed('evt_unordered', 'a', 1), type: 'campaign.paused' }))
  await until(async () => (await inbox.outcome('evt_old'))?.state === 'dead', 'the stale event to be dead')
  await webhooks.idle()
  t.same(told, ['evt_new:false', 'evt_old:true', 'evt_old:true'])

  const old = await inbox.outcome('evt_old')
  t.match(old, { state: 'dead', orderingKey: 'action:a', stale: true, handled: ['notify'] }, 'told stale, and notify finished while award died')
  t.same(old?.attemptLog?.map((record) => `${record.handler}#${record.attempt}:${record.outcome}`), ['award#1:failed', 'award#2:failed'])
  const fresh = await inbox.outcome('evt_new')
  t.equal(fresh?.stale, false, 'the newer event was told it was not stale')
  t.equal(fresh?.handled, undefined, 'a done event leaves the list out: all its handlers finished')
  const unordered = await inbox.outcome('evt_unordered')
  t.equal(unordered?.stale, undefined, 'an unordered event has no stale flag')

  const ids = async (handler: string): Promise<string[]> => (await inbox.events({ handler })).map(({ id }) => id)
  t.same(await ids('award'), ['evt_old'], 'the events award failed on')
  t.same(await ids('notify'), [], 'notify failed on none')
  t.same(await ids("award' OR 1=1 --"), [], 'a handler is a value, never SQL')
  t.same((await inbox.events({ handler: 'award', state: 'done' })).map(({ id }) => id), [], 'ANDed with the other filters')
  t.match((await inbox.events({ state: 'dead' }))[0], { id: 'evt_old', stale: true, handled: ['notify'] }, 'the listing carries the same record')
  await t.rejects(inbox.events({ handler: '' }), { message: /events\(query\): "handler" must be a non-empty string/ })
  await t.rejects(inbox.events({ handler: 42 as never }), { message: /"handler" must be a non-empty string .*got 42/ })
})

t.test('sqlite: a pending event between retries lists the handlers that finished; a skipped stale event is stale too', async (t) => {
  const inbox = sqliteInbox({ path: freshPath(), pollIntervalMs: 50 })
  const webhooks = receiver(inbox, { ordering: { ...byAction, skipStale: true }, retry: { attempts: 3, minDelayMs: 60_000, maxDelayMs: 60_000 } })
  t.teardown(() => webhooks.close())
  webhooks.on('action.completed', async function award (event) { if (event.id === 'evt_retry') throw new Error('later') }, { name: 'award' })
  webhooks.on('action.completed', async function notify () {}, { name: 'notify' })
  await webhooks.receive(delivery(keyed('evt_newer', 'b', 9)))
  await webhooks.idle()
  await webhooks.receive(delivery(keyed('evt_skipped', 'b', 2)))
  await webhooks.receive(delivery(keyed('evt_retry', 'c', 1)))
  await until(async () => (await inbox.outcome('evt_skipped'))?.state === 'done', 'the stale event to be skipped')
  await until(async () => (await inbox.outcome('evt_retry'))?.attempts === 1 && (await inbox.outcome('evt_retry'))?.lastError !== undefined, 'the first attempt to fail')
  t.match(await inbox.outcome('evt_skipped'), { state: 'done', skipped: 'stale', stale: true })
  t.match(await inbox.outcome('evt_retry'), { state: 'pending', stale: false, handled: ['notify'] }, 'a retry will run award only')
})

t.test('sqlite: a file of schema 4 is upgraded on open: its rows keep no stale flag, new runs record it, its done events still say the newest handled', async (t) => {
  const path = freshPath()
  const old = new Database(path)
  createOldEventsTable(old, 4)
  old.exec('CREATE TABLE sir_webhook_ordering_newest (key TEXT PRIMARY KEY, newest_ms INTEGER NOT NULL, updated_at INTEGER NOT NULL)')
  // Handled before the upgrade: the newest of its key, so the older event below is stale.
  const newest = Date.UTC(2026, 4, 10, 9, 0, 9)
  old.prepare("INSERT INTO sir_webhook_events (id, type, event, body, state, received_at, next_attempt_at, attempts, succeeded, finished_at, ordering_key, created_at_ms) VALUES ('evt_v4', 'action.completed', '', ?, 'done', 1000, 1000, 1, '[\"ledger\"]', 1001, 'action:k', ?)")
    .run(Buffer.from(JSON.stringify(keyed('evt_v4', 'k', 9))), newest)
  old.prepare("INSERT INTO sir_webhook_ordering_newest (key, newest_ms, updated_at) VALUES ('action:k', ?, 1001)").run(newest)
  old.close()
  const inbox = sqliteInbox({ path, pollIntervalMs: 50 })
  const webhooks = receiver(inbox, { ordering: byAction })
  t.teardown(() => webhooks.close())
  const told: string[] = []
  webhooks.on('action.completed', function ledger (event, { ordering }) { told.push(`${event.id}:${String(ordering?.stale)}`) }, { name: 'ledger' })
  await webhooks.receive(delivery(keyed('evt_v5', 'k', 3)))
  await webhooks.idle()
  t.same(told, ['evt_v5:true'], 'the newest handled before the upgrade still counts')
  t.match(await inbox.outcome('evt_v5'), { state: 'done', orderingKey: 'action:k', stale: true })
  const before = await inbox.outcome('evt_v4')
  t.equal(before?.state, 'done')
  t.equal(before?.stale, undefined, 'a row run before the upgrade says nothing of stale rather than a guess')
  const check = new Database(path, { readonly: true })
  t.teardown(() => { check.close() })
  t.equal(check.pragma('user_version', { simple: true }), SCHEMA_VERSION)
  t.ok(check.prepare<[], string>("SELECT name FROM pragma_table_info('sir_webhook_events')").pluck().all().includes('stale'), 'the column was added')
  // Schema 6 reads the newest handled from the done events: the table that kept it is gone.
  t.same(check.prepare<[], string>("SELECT name FROM sqlite_master WHERE name IN ('sir_webhook_ordering_newest', 'sir_webhook_events_key_line', 'sir_webhook_events_key_states') ORDER BY name").pluck().all(), ['sir_webhook_events_key_states'])
})

t.test('sqlite: a receiver without ordering on a file with keyed rows records no stale flag, as its handlers are told nothing', async (t) => {
  const path = freshPath()
  const first = receiver(sqliteInbox({ path, pollIntervalMs: 50 }), { ordering: byAction })
  first.on('action.completed', function ledger () {}, { name: 'ledger' })
  await first.receive(delivery(keyed('evt_first', 'k', 9)))
  await first.idle()
  await first.close()
  // Accepted with a key but not run: stopped before its handlers could start.
  const keyedOnly = receiver(sqliteInbox({ path, pollIntervalMs: 50 }), { ordering: byAction })
  await keyedOnly.receive(delivery(keyed('evt_later', 'k', 2)))
  await keyedOnly.close()
  const inbox = sqliteInbox({ path, pollIntervalMs: 50 })
  const plain = receiver(inbox)
  t.teardown(() => plain.close())
  const told: string[] = []
  plain.on('action.completed', function ledger (event, { ordering }) { told.push(`${event.id}:${ordering === undefined ? 'unordered' : String(ordering.stale)}`) }, { name: 'ledger' })
  await until(async () => (await inbox.outcome('evt_later'))?.state === 'done', 'the keyed event to run')
  t.same(told, ['evt_later:unordered'])
  t.equal((await inbox.outcome('evt_later'))?.stale, undefined)
  t.equal((await inbox.outcome('evt_first'))?.stale, false)
})

t.test('sqlite: review fixes: an odd attempt log does not break the handler listing; a paused claim records no stale flag; a replayed skip is no longer "skipped"', async (t) => {
  const path = freshPath()
  const inbox = sqliteInbox({ path, pollIntervalMs: 50 })
  const webhooks = receiver(inbox, { ordering: { ...byAction, skipStale: true } })
  t.teardown(() => webhooks.close())
  webhooks.on('action.completed', async function award () {}, { name: 'award' })
  await webhooks.receive(delivery(keyed('evt_newest', 'd', 9)))
  await webhooks.idle()
  await webhooks.receive(delivery(keyed('evt_late', 'd', 1)))
  await until(async () => (await inbox.outcome('evt_late'))?.state === 'done', 'the late event to be skipped')

  // A hand-edited log: valid JSON, but its entries are not objects.
  const db = new Database(path)
  t.teardown(() => db.close())
  db.prepare('UPDATE sir_webhook_events SET attempt_log = ? WHERE id = ?').run('["award"]', 'evt_newest')
  t.same((await inbox.events({ handler: 'award' })).map(({ id }) => id), [], 'the listing answers, passing the odd log over')

  // Paused: the claim is deferred before any handler runs.
  await webhooks.pause('award')
  await webhooks.receive(delivery(keyed('evt_paused', 'e', 5)))
  await until(async () => ((await inbox.outcome('evt_paused'))?.attemptLog ?? []).some((run) => run.outcome === 'deferred'), 'the paused run to be deferred')
  t.equal((await inbox.outcome('evt_paused'))?.stale, undefined, 'a claim deferred by the pause ran no handler: no stale flag')
  await webhooks.close()

  // Replayed by an operator: pending again, so no longer "skipped", and nothing told yet.
  const operator = sqliteInbox({ path })
  t.teardown(() => operator.close(0))
  t.equal(await operator.requeue?.({ state: 'done' }), 2)
  const replayed = await operator.outcome('evt_late')
  t.equal(replayed?.state, 'pending')
  t.equal(replayed?.skipped, undefined, 'a pending event is not reported as skipped')
  t.equal(replayed?.stale, undefined, 'nor stale: no handler has been told anything since the replay')
})
