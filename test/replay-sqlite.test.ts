import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { sqliteInbox } from '../src/sqlite/inbox.js'
import { Webhooks } from '../src/index.js'
import { SECRET } from './helpers/deliveries.js'
import { dryRunScenario, largeReplayScenario, requeueScenario } from './replay/scenario.js'

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
