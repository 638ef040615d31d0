import { copyFileSync, existsSync, renameSync, unlinkSync } from 'node:fs'
import { createServer } from 'node:http'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { nodeListener } from '../src/node/listener.js'
import { sqliteInbox, type SqliteInbox } from '../src/sqlite/inbox.js'
import { serveForTest } from './helpers/serve.js'
import { tempDir } from './inbox-contract/scenarios.js'
import { event, post, receiver, until } from './inbox-contract/support.js'

/** A receiver with the SQLite inbox behind a real node:http server. */
async function running (t: Test, pollIntervalMs: number): Promise<{ path: string, inbox: SqliteInbox, webhooks: ReturnType<typeof receiver>, url: string, handled: string[] }> {
  const path = join(tempDir(t), 'inbox.db')
  const inbox = sqliteInbox({ path, pollIntervalMs })
  const webhooks = receiver(inbox)
  const handled: string[] = []
  webhooks.on('action.completed', function record (evt) { handled.push(evt.id) })
  const base = await serveForTest(t, createServer(nodeListener(webhooks)), webhooks)
  return { path, inbox, webhooks, url: `${base}/webhooks/sir`, handled }
}

const goneMessage = 'the SQLite inbox file was deleted or replaced while in use; deliveries get 503 until the receiver is restarted, and events accepted since it happened are lost with it'

t.test('issue 20 item 10: a database file deleted under a running receiver is noticed before the next commit: 503, degraded, logged', async (t) => {
  // A poll interval far beyond the test: only the check before the commit can see it.
  const { path, inbox, webhooks, url, handled } = await running(t, 60_000)
  t.equal(await post(url, event('evt_before')), 200)
  await until(() => handled.includes('evt_before'), 'the first event to be handled')
  // Its outcome committed too: a file deleted before that write would run it again, as at-least-once allows.
  await until(async () => (await inbox.outcome('evt_before'))?.state === 'done', 'the first event to be recorded done')
  t.same(inbox.health(), { status: 'ok', reasons: [] })
  unlinkSync(path)
  t.equal(await post(url, event('evt_after_delete')), 503, 'no 2xx for a row written to a deleted file')
  t.equal(inbox.health().status, 'degraded')
  t.match(inbox.health().reasons, [/the inbox's database file ".*inbox\.db" was deleted while in use; restart the receiver/])
  t.equal(webhooks.health().status === 'ok', false, "the receiver's health says so too")
  t.equal(await post(url, event('evt_later')), 503, 'and every later delivery')
  const errors = webhooks.log.filter((entry) => entry.msg === goneMessage)
  t.equal(errors.length, 1, 'logged once, at error')
  t.equal(errors[0]?.level, 'error')
  t.same(handled, ['evt_before'], 'nothing refused ran')
})

t.test('issue 20 item 10: a deleted -wal file is noticed by the timer, with no delivery needed', async (t) => {
  const { path, inbox, url } = await running(t, 50)
  t.equal(await post(url, event('evt_before')), 200)
  t.ok(existsSync(`${path}-wal`))
  unlinkSync(`${path}-wal`)
  await until(() => inbox.health().status === 'degraded', 'the inbox to notice')
  t.match(inbox.health().reasons, [/the inbox's -wal file ".*inbox\.db-wal" was deleted while in use/])
  t.equal(await post(url, event('evt_after')), 503)
})

t.test('issue 20 item 10: a database file replaced by a copy (another inode) is noticed too', async (t) => {
  const { path, inbox, url } = await running(t, 50)
  t.equal(await post(url, event('evt_before')), 200)
  copyFileSync(path, `${path}.copy`)
  renameSync(`${path}.copy`, path)
  await until(() => inbox.health().status === 'degraded', 'the inbox to notice')
  t.match(inbox.health().reasons, [/the inbox's database file ".*inbox\.db" was replaced by another file while in use/])
  t.equal(await post(url, event('evt_after')), 503)
})
