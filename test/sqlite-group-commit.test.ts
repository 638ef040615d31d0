import { join } from 'node:path'
import Database from 'better-sqlite3'
import t, { type Test } from 'tap'
import { sqliteInbox, type SqliteInbox } from '../src/sqlite/inbox.js'
import { tempDir } from './inbox-contract/scenarios.js'
import { delivery, event, receiver, until } from './inbox-contract/support.js'

t.test('deliveries that arrive together are committed together: all accepted, each handled once', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const inbox = sqliteInbox({ path })
  const webhooks = receiver(inbox, { concurrency: 4 })
  t.teardown(() => webhooks.close())
  const handled: string[] = []
  webhooks.on('action.completed', function record (evt) { handled.push(evt.id) })
  const ids = Array.from({ length: 120 }, (_, index) => `evt_together_${index}`)
  // Every copy twice, in one turn: one of each pair accepted, the other a duplicate
  // seen inside the same transaction.
  const answers = await Promise.all([...ids, ...ids].map(async (id) => (await webhooks.receive(delivery(event(id)))).code))
  t.equal(answers.filter((code) => code === 'ACCEPTED').length, ids.length)
  t.equal(answers.filter((code) => code === 'DUPLICATE').length, ids.length)
  await until(() => handled.length === ids.length, 'every event to be handled')
  await until(async () => (await inbox.outcome(ids.at(-1)!))?.state === 'done', 'the last outcome')
  t.same([...handled].sort(), [...ids].sort(), 'each once')
})

/**
 * A receiver with a handler on a fresh SQLite inbox, and the file opened beside it
 * with `trigger` created: a store failure on cue, for the accepts' INSERT.
 */
function failingInsert (t: Test, trigger: string, options: Parameters<typeof receiver>[1] = {}): { inbox: SqliteInbox, webhooks: ReturnType<typeof receiver>, db: Database.Database } {
  const path = join(tempDir(t), 'inbox.db')
  const inbox = sqliteInbox({ path })
  const webhooks = receiver(inbox, options)
  t.teardown(() => webhooks.close())
  webhooks.on('action.completed', function record () {})
  const db = new Database(path)
  t.teardown(() => { db.close() })
  db.exec(trigger)
  return { inbox, webhooks, db }
}

t.test('a failure that rolls back the batch answers 503 to every delivery in it: no 2xx without a commit', async (t) => {
  // RAISE(ROLLBACK) ends the whole transaction, as SQLITE_FULL or an I/O error does.
  const { inbox, webhooks, db } = failingInsert(t, `CREATE TRIGGER full_disk BEFORE INSERT ON sir_webhook_events WHEN NEW.id = 'evt_last_straw'
    BEGIN SELECT RAISE(ROLLBACK, 'simulated: database or disk is full'); END`, { retryAfterSeconds: 5 })
  const ids = ['evt_first_in_batch', 'evt_last_straw', 'evt_after_in_batch']
  const answers = await Promise.all(ids.map(async (id) => await webhooks.receive(delivery(event(id)))))
  t.same(answers.map((answer) => answer.code), ['INBOX_UNAVAILABLE', 'INBOX_UNAVAILABLE', 'INBOX_UNAVAILABLE'])
  t.same(answers.map((answer) => answer.headers['retry-after']), ['5', '5', '5'])
  for (const id of ids) t.equal(await inbox.outcome(id), undefined, `${id} was not recorded`)
  t.same(inbox.health(), { status: 'ok', reasons: [] }, 'a failed accept is answered 503 by itself; it does not degrade the inbox')
  db.exec('DROP TRIGGER full_disk')
  const retried = await Promise.all(ids.map(async (id) => (await webhooks.receive(delivery(event(id)))).code))
  t.same(retried, ['ACCEPTED', 'ACCEPTED', 'ACCEPTED'], "the sender's retries are accepted")
})

t.test('an accept that fails on its own statement fails alone; its batch-mates are committed', async (t) => {
  const { inbox, webhooks } = failingInsert(t, `CREATE TRIGGER refuse_one BEFORE INSERT ON sir_webhook_events WHEN NEW.id = 'evt_refused_alone'
    BEGIN SELECT RAISE(ABORT, 'simulated: constraint'); END`)
  const ids = ['evt_mate_1', 'evt_refused_alone', 'evt_mate_2']
  const answers = await Promise.all(ids.map(async (id) => (await webhooks.receive(delivery(event(id)))).code))
  t.same(answers, ['ACCEPTED', 'INBOX_UNAVAILABLE', 'ACCEPTED'])
  t.ok(await inbox.outcome('evt_mate_1'))
  t.equal(await inbox.outcome('evt_refused_alone'), undefined)
})
