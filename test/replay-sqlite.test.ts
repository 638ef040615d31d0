import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import Database from 'better-sqlite3'
import { sqliteInbox } from '../src/sqlite/inbox.js'
import { requeue } from '../src/sqlite/replay.js'
import { Webhooks } from '../src/index.js'
import { SECRET } from './helpers/deliveries.js'
import { dryRunScenario, largeReplayScenario, requeueCapScenario, requeueResetsRetryLaterScenario, requeueScenario } from './replay/scenario.js'

function tempPath (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'sir-replay-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return join(dir, 'inbox.db')
}

t.test('SQLite: countMatching and requeue by state, type, time and handler', async (t) => {
  await requeueScenario(t, sqliteInbox({ path: tempPath(t), pollIntervalMs: 50 }))
})

t.test('SQLite: replay({ dryRun: true }) runs the current handlers and leaves the events as they were', async (t) => {
  await dryRunScenario(t, sqliteInbox({ path: tempPath(t), pollIntervalMs: 50 }))
})

t.test('the memory inbox keeps no finished events: replay() is refused', async (t) => {
  const webhooks = new Webhooks({ secret: SECRET })
  t.teardown(() => webhooks.close())
  await t.rejects(webhooks.replay({ state: 'dead' }), { name: 'WebhookOptionsError', message: /keeps no finished events to replay; the SQLite, Postgres and BullMQ inboxes do/ })
  await t.rejects(webhooks.replay({ state: 'done' }, { dryRun: true }), { name: 'WebhookOptionsError', message: /replay dry/ })
})

t.test('SQLite: a replay larger than a batch replays each event once', async (t) => {
  await largeReplayScenario(t, sqliteInbox({ path: tempPath(t), pollIntervalMs: 50 }))
})

t.test('SQLite requeue walks from a cursor: rows done again between batches are not replayed again', async (t) => {
  const path = tempPath(t)
  await sqliteInbox({ path }).close(0)
  const db = new Database(path)
  t.teardown(() => { db.close() })
  const insert = db.prepare("INSERT INTO sir_webhook_events (id, type, event, state, received_at, next_attempt_at, succeeded, finished_at) VALUES (?, 'action.completed', '{}', 'done', 1, 1, '[\"audit\"]', 2)")
  db.transaction(() => { for (let index = 0; index < 1_100; index++) insert.run(`evt_${index}`) })()
  // A runner faster than the requeue: after each batch, every queued row is done again.
  let batches = 0
  let counted = 0
  const finishAll = db.prepare("UPDATE sir_webhook_events SET state = 'done', finished_at = 3 WHERE state = 'pending'")
  const queued = await requeue(db, { state: 'done' }, async (run) => db.transaction(run)(), () => 10, () => {
    if (++batches > 5) throw new Error('the requeue keeps finding the rows it queued')
    finishAll.run()
  }, (events) => { counted += events })
  t.equal(queued, 1_100, 'each row queued once')
  t.equal(counted, 1_100, 'the backlog bound is told of each row made pending, in its batch')
  t.equal(batches, 3, 'in three batches of at most 500')
})

t.test('SQLite: a requeue of dead events starts the RetryLater bound afresh', async (t) => {
  await requeueResetsRetryLaterScenario(t, sqliteInbox({ path: tempPath(t), pollIntervalMs: 50 }))
})

t.test('SQLite: requeue({ max }) queues no more than the confirmed count', async (t) => {
  await requeueCapScenario(t, sqliteInbox({ path: tempPath(t), pollIntervalMs: 50 }))
})
