import { join } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { sqliteInbox } from '../src/sqlite/inbox.js'
import { SCHEMA_VERSION } from '../src/sqlite/schema.js'
import { tempDir } from './inbox-contract/scenarios.js'
import { runOrderingProperty } from './ordering/property.js'
import { runOrderingScenarios } from './ordering/scenarios.js'
import { delivery, receiver, until } from './inbox-contract/support.js'
import { ensureBuilt, runCli } from './cli/helpers.js'
import { createOldEventsTable } from './helpers/sqlite-old-schema.js'

ensureBuilt()

let files = 0
const dir = tempDir(t)
const freshInbox = (): ReturnType<typeof sqliteInbox> => sqliteInbox({ path: join(dir, `ordering-${files++}.db`), pollIntervalMs: 50 })

runOrderingProperty(t, { name: 'sqlite', inbox: freshInbox }, 6)
runOrderingScenarios(t, { name: 'sqlite', inbox: freshInbox, durable: true })

/** An event of `key` created `second` seconds after a fixed instant. */
function keyed (id: string, key: string, second: number): Record<string, unknown> {
  return { id, type: 'action.completed', createdAt: new Date(Date.UTC(2026, 4, 10, 9, 0, second)).toISOString(), data: { actionId: key } }
}
const byAction = { key: (event: { data: unknown }) => `action:${(event.data as { actionId: string }).actionId}` }

t.test('sqlite: a stale event skipped by skipStale is done with the outcome "stale", in outcome() and inbox show', async (t) => {
  const path = join(dir, `ordering-${files++}.db`)
  const inbox = sqliteInbox({ path, pollIntervalMs: 50 })
  const webhooks = receiver(inbox, { ordering: { ...byAction, skipStale: true } })
  t.teardown(() => webhooks.close())
  const ran: string[] = []
  webhooks.on('action.completed', function ledger (event) { ran.push(event.id) }, { name: 'ledger' })
  await webhooks.receive(delivery(keyed('evt_skip_newer', 'a', 9)))
  await webhooks.idle()
  await webhooks.receive(delivery(keyed('evt_skip_older', 'a', 3)))
  await webhooks.idle()
  t.same(ran, ['evt_skip_newer'])
  t.match(await inbox.outcome('evt_skip_older'), { state: 'done', skipped: 'stale', orderingKey: 'action:a' })
  t.equal((await inbox.outcome('evt_skip_newer'))?.skipped, undefined, 'a handled event is not marked')
  t.match(webhooks.stats().ordering, { skippedStale: 1, waitingKeys: 0, blockedKeys: 0 })
  const shown = await runCli(['inbox', 'show', 'evt_skip_older', '--store', `sqlite:${path}`])
  t.equal(shown.code, 0, shown.stderr)
  t.match(shown.stdout, /outcome +stale: not run, a newer event of its ordering key was handled first/)
  t.match(shown.stdout, /ordering key +action:a/)
  const json = await runCli(['inbox', 'show', 'evt_skip_older', '--store', `sqlite:${path}`, '--json'])
  t.match(JSON.parse(json.stdout), { state: 'done', skipped: 'stale' })
})

t.test('sqlite: inbox blocked lists a blocked key with the event holding it, inbox stats counts it, inbox unblock moves it on in the running receiver', async (t) => {
  const path = join(dir, `ordering-${files++}.db`)
  const store = ['--store', `sqlite:${path}`]
  const webhooks = receiver(sqliteInbox({ path, pollIntervalMs: 50 }), { ordering: { ...byAction, onDeadLetter: 'block' }, retry: { attempts: 2, minDelayMs: 1, maxDelayMs: 2 } })
  t.teardown(() => webhooks.close())
  const ran: string[] = []
  webhooks.on('action.completed', async function ledger (event) {
    ran.push(event.id)
    if (event.id === 'evt_cli_bad') throw new Error('bad event')
  }, { name: 'ledger' })
  const empty = await runCli(['inbox', 'blocked', ...store])
  t.equal(empty.code, 0, empty.stderr)
  t.equal(empty.stdout, 'no ordering key is blocked\n')
  await webhooks.receive(delivery(keyed('evt_cli_bad', 'k', 1)))
  await webhooks.receive(delivery(keyed('evt_cli_next', 'k', 2)))
  await until(() => webhooks.stats().ordering?.blockedKeys === 1, 'the key to block')
  const listed = await runCli(['inbox', 'blocked', ...store])
  t.equal(listed.code, 0, listed.stderr)
  t.match(listed.stdout, /KEY +HELD BY EVENT +BLOCKED SINCE\n.*action:k +evt_cli_bad +20\d\d-/)
  t.match(JSON.parse((await runCli(['inbox', 'blocked', ...store, '--json'])).stdout), [{ key: 'action:k', eventId: 'evt_cli_bad' }])
  const stats = await runCli(['inbox', 'stats', ...store])
  t.match(stats.stdout, /ordering keys: 1 waiting, 1 blocked behind a dead letter \(inbox blocked lists them\)/)
  t.match(JSON.parse((await runCli(['inbox', 'stats', ...store, '--json'])).stdout), { pending: 1, dead: 1, ordering: { waitingKeys: 1, blockedKeys: 1 } })
  t.notOk(ran.includes('evt_cli_next'), 'the next event of the key waits')
  const notBlocked = await runCli(['inbox', 'unblock', 'action:other', ...store])
  t.equal(notBlocked.code, 1)
  t.match(notBlocked.stderr, /the key "action:other" is not blocked/)
  const unblocked = await runCli(['inbox', 'unblock', 'action:k', ...store])
  t.equal(unblocked.code, 0, unblocked.stderr)
  t.match(unblocked.stdout, /^unblocked action:k: its next event runs/)
  await until(() => ran.includes('evt_cli_next'), 'the receiver to run the next event, unblocked through the CLI', 10_000)
  t.equal(webhooks.stats().ordering?.blockedKeys, 0)
  t.equal(webhooks.health().status, 'ok')
  t.equal((await runCli(['inbox', 'unblock', ...store])).code, 2, 'unblock without a key is a usage error')
})

t.test('sqlite: a re-driven event that blocks its key runs in its place, then the key moves on', async (t) => {
  const inbox = freshInbox()
  const webhooks = receiver(inbox, { ordering: { ...byAction, onDeadLetter: 'block' }, retry: { attempts: 2, minDelayMs: 1, maxDelayMs: 2 } })
  t.teardown(() => webhooks.close())
  const ran: string[] = []
  let fixed = false
  webhooks.on('action.completed', async function ledger (event, { ordering }) {
    if (event.id === 'evt_rd_bad' && !fixed) throw new Error('not yet')
    ran.push(`${event.id}:${String(ordering?.stale)}`)
  }, { name: 'ledger' })
  await webhooks.receive(delivery(keyed('evt_rd_bad', 'k', 1)))
  await webhooks.receive(delivery(keyed('evt_rd_next', 'k', 2)))
  await until(() => webhooks.stats().ordering?.blockedKeys === 1, 'the key to block')
  fixed = true
  t.equal(await inbox.redrive('evt_rd_bad'), true)
  await webhooks.idle()
  t.same(ran, ['evt_rd_bad:false', 'evt_rd_next:false'], 'the re-driven event ran first, holding its key, then the next')
  t.same(await webhooks.ordering.blocked(), [])
})

t.test('sqlite: a file of schema 3 is upgraded on open: its pending event runs unordered, new ones ordered', async (t) => {
  const path = join(dir, `ordering-${files++}.db`)
  const old = new Database(path)
  createOldEventsTable(old, 3)
  old.prepare("INSERT INTO sir_webhook_events (id, type, event, body, state, received_at, next_attempt_at) VALUES ('evt_v3', 'action.completed', '', ?, 'pending', 1000, 1000)")
    .run(Buffer.from(JSON.stringify(keyed('evt_v3', 'k', 5))))
  old.close()
  const webhooks = receiver(sqliteInbox({ path, pollIntervalMs: 50 }), { ordering: byAction })
  t.teardown(() => webhooks.close())
  const told: string[] = []
  webhooks.on('action.completed', function ledger (event, { ordering }) { told.push(`${event.id}:${ordering?.key ?? 'unordered'}`) }, { name: 'ledger' })
  await webhooks.receive(delivery(keyed('evt_v4', 'k', 6)))
  await webhooks.idle()
  t.same(told.sort(), ['evt_v3:unordered', 'evt_v4:action:k'], 'an event accepted before the upgrade has no key; a new one does')
  const check = new Database(path, { readonly: true })
  t.teardown(() => { check.close() })
  t.equal(check.pragma('user_version', { simple: true }), SCHEMA_VERSION, 'upgraded to the current schema (4 to 6 at once)')
})
