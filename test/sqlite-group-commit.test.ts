import { join } from 'node:path'
import Database from 'better-sqlite3'
import t, { type Test } from 'tap'
import { GroupCommit } from '../src/sqlite/group-commit.js'
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

t.test('issue 20: an accept whose failure rolls back the whole batch fails alone; its batch-mates are retried and committed', async (t) => {
  // RAISE(ROLLBACK) ends the whole transaction, as SQLITE_FULL or an I/O error does.
  const { inbox, webhooks } = failingInsert(t, `CREATE TRIGGER full_disk BEFORE INSERT ON sir_webhook_events WHEN NEW.id = 'evt_last_straw'
    BEGIN SELECT RAISE(ROLLBACK, 'simulated: database or disk is full'); END`, { retryAfterSeconds: 5 })
  const ids = ['evt_first_in_batch', 'evt_last_straw', 'evt_after_in_batch']
  const answers = await Promise.all(ids.map(async (id) => await webhooks.receive(delivery(event(id)))))
  t.same(answers.map((answer) => answer.code), ['ACCEPTED', 'INBOX_UNAVAILABLE', 'ACCEPTED'])
  t.equal(answers[1]!.headers['retry-after'], '5')
  t.equal(await inbox.outcome('evt_last_straw'), undefined, 'the failed one was not recorded')
  await until(async () => (await inbox.outcome('evt_first_in_batch'))?.state === 'done' && (await inbox.outcome('evt_after_in_batch'))?.state === 'done', 'its batch-mates to be handled')
  t.same(inbox.health(), { status: 'ok', reasons: [] }, 'a failed accept is answered 503 by itself; it does not degrade the inbox')
})

t.test('issue 20: a batch whose COMMIT fails is retried one job per transaction: only the job that cannot commit fails', async (t) => {
  const db = new Database(join(tempDir(t), 'commit.db'))
  t.teardown(() => { db.close() })
  // A deferred foreign key is checked at COMMIT: the one failure a commit has that names no statement.
  db.pragma('foreign_keys = ON')
  db.exec(`CREATE TABLE parent (id TEXT PRIMARY KEY);
    CREATE TABLE child (id TEXT PRIMARY KEY, parent TEXT REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);
    INSERT INTO parent VALUES ('p')`)
  const writer = new GroupCommit(db)
  const insert = db.prepare('INSERT INTO child VALUES (?, ?)')
  const write = async (id: string, parent: string): Promise<string> => await writer.write(() => insert.run(id, parent), { durable: true, deadline: Date.now() + 1_000 })
    .then(() => 'committed', (error: { code?: string }) => String(error.code))
  const results = await Promise.all([write('a', 'p'), write('orphan', 'missing'), write('b', 'p')])
  t.same(results, ['committed', 'SQLITE_CONSTRAINT_FOREIGNKEY', 'committed'])
  t.same(db.prepare('SELECT id FROM child ORDER BY id').pluck().all(), ['a', 'b'])
})

t.test('issue 20 item 21: every batch holding an accept commits with synchronous=FULL, before and after handler writes', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const db = new Database(path)
  t.teardown(() => { db.close() })
  db.pragma('journal_mode = WAL')
  db.exec('CREATE TABLE t (n INTEGER)')
  // The level in force at each COMMIT, read on the committing connection itself.
  const commits: Array<{ durable: boolean, synchronous: number }> = []
  let durableInBatch = false
  const watched = new Proxy(db, {
    get (target, property) {
      if (property === 'exec') {
        return (sql: string) => {
          if (sql === 'COMMIT') commits.push({ durable: durableInBatch, synchronous: target.pragma('synchronous', { simple: true }) as number })
          if (sql === 'BEGIN IMMEDIATE') durableInBatch = false
          return target.exec(sql)
        }
      }
      const value = Reflect.get(target, property) as unknown
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value
    }
  })
  const writer = new GroupCommit(watched)
  const insert = db.prepare('INSERT INTO t VALUES (?)')
  const write = async (n: number, durable: boolean): Promise<unknown> => await writer.write(() => {
    if (durable) durableInBatch = true
    return insert.run(n)
  }, { durable, deadline: Date.now() + 1_000 })
  // Handler writes (claims, outcomes: NORMAL) before, between and after accepts (FULL), in every order.
  for (let round = 0; round < 3; round++) {
    await write(1, false)
    await Promise.all([write(2, true), write(3, false)])
    await write(4, false)
    await write(5, true)
    await Promise.all([write(6, false), write(7, false)])
  }
  const FULL = 2
  t.ok(commits.some((commit) => !commit.durable && commit.synchronous !== FULL), 'handler writes commit without an fsync (else this test proves nothing)')
  const accepts = commits.filter((commit) => commit.durable)
  t.ok(accepts.length >= 6, `${accepts.length} batches held an accept`)
  t.same(accepts.map((commit) => commit.synchronous), accepts.map(() => FULL), 'each one committed with synchronous=FULL')
  t.equal(db.pragma('synchronous', { simple: true }), FULL, 'and the connection is back at FULL between batches')
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
