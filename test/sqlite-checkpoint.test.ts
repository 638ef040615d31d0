import { copyFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { sqliteInbox } from '../src/sqlite/inbox.js'
import { tempDir } from './inbox-contract/scenarios.js'
import { delivery, event, receiver } from './inbox-contract/support.js'

/** Rows of the events table in the database file alone, without its WAL: what a checkpoint has copied there. */
function rowsInMainFile (path: string, dir: string): number {
  const copy = join(dir, 'main-only.db')
  copyFileSync(path, copy)
  const db = new Database(copy, { readonly: true })
  try {
    return (db.prepare('SELECT count(*) AS n FROM sir_webhook_events').get() as { n: number }).n
  } catch {
    // The table's own creation is still in the WAL.
    return 0
  } finally {
    db.close()
  }
}

t.test('issue 22: the WAL is checkpointed on a thread of its own, not in a commit on the event loop', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'inbox.db')
  const inbox = sqliteInbox({ path })
  const webhooks = receiver(inbox)
  t.teardown(() => webhooks.close())
  const ids = Array.from({ length: 50 }, (_, index) => `evt_checkpointed_${index}`)
  const answers = await Promise.all(ids.map(async (id) => (await webhooks.receive(delivery(event(id)))).code))
  t.same(new Set(answers), new Set(['ACCEPTED']))
  // The event loop held for 800 ms: only another thread can copy the WAL into the file
  // meanwhile (50 small events are far from the 1 000 pages at which a commit would).
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 800)
  t.equal(rowsInMainFile(path, dir), ids.length, 'every acknowledged event is in the database file itself')
  await webhooks.close()
  t.notOk(existsSync(`${path}-wal`), 'close() ends the thread; the last connection checkpoints and removes the WAL')
  t.equal(rowsInMainFile(path, dir), ids.length)
})
