import { join } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { sqliteInbox } from '../src/sqlite/inbox.js'
import { tempDir } from './inbox-contract/scenarios.js'
import { delivery, event, receiver, sleep, until } from './inbox-contract/support.js'

t.test('options are checked, and the message names the option', async (t) => {
  t.throws(() => sqliteInbox({ path: '' }), { message: /sir-webhooks: "path" must be/ })
  t.throws(() => sqliteInbox({ path: 'x.db', leaseMs: -1 }), { message: 'sir-webhooks: "leaseMs" must be an integer of at least 100, got -1' })
  t.throws(() => sqliteInbox({ path: 'x.db', acceptTimeoutMs: 1.5 }), { message: /"acceptTimeoutMs" must be a non-negative integer/ })
  t.throws(() => sqliteInbox({ path: 'x.db', retentionSeconds: 0 }), { message: /"retentionSeconds" must be a positive integer/ })
})

t.test('the database is in WAL mode, so a committed accept is in the log before the 2xx', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const webhooks = receiver(sqliteInbox({ path }))
  t.teardown(() => webhooks.close())
  const other = new Database(path)
  t.teardown(() => other.close())
  t.equal(other.pragma('journal_mode', { simple: true }), 'wal')
  t.equal((await webhooks.receive(delivery(event('evt_wal')))).status, 200)
  // Another connection sees the row as soon as the 2xx is out: it is committed, not buffered.
  t.equal(other.prepare('SELECT count(*) FROM sir_webhook_events WHERE id = ?').pluck().get('evt_wal'), 1)
})

t.test('a database locked past acceptTimeoutMs gets 503 with Retry-After, and nothing is recorded', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const webhooks = receiver(sqliteInbox({ path, acceptTimeoutMs: 100 }), { retryAfterSeconds: 7 })
  t.teardown(() => webhooks.close())
  let calls = 0
  webhooks.on('action.completed', () => { calls++ })
  const locker = new Database(path)
  t.teardown(() => { if (locker.open) locker.close() })
  locker.exec('BEGIN IMMEDIATE')
  const startedAt = Date.now()
  const refused = await webhooks.receive(delivery(event('evt_locked')))
  t.equal(refused.status, 503)
  t.equal(refused.code, 'INBOX_UNAVAILABLE')
  t.equal(refused.headers['retry-after'], '7')
  t.ok(Date.now() - startedAt < 5_000, 'the wait is bounded')
  t.match(webhooks.log.find((entry) => entry.msg === 'the SQLite inbox could not record the event')?.fields, { event: { id: 'evt_locked' } })
  locker.exec('ROLLBACK')
  t.equal(await webhooks.inbox.outcome?.('evt_locked'), undefined, 'nothing was recorded')
  const retried = await webhooks.receive(delivery(event('evt_locked')))
  t.equal(retried.code, 'ACCEPTED', "the sender's retry is accepted, not taken for a duplicate")
  await until(() => calls === 1, 'the handler')
})

t.test('a full inbox answers 503 and records nothing; a duplicate of a queued event is still 200', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const webhooks = receiver(sqliteInbox({ path }), { maxQueueSize: 1, closeGraceMs: 50 })
  t.teardown(() => webhooks.close())
  webhooks.on('action.completed', async (_evt, { signal }) => {
    await new Promise<void>((resolve) => { signal.addEventListener('abort', () => { resolve() }) })
  })
  t.equal((await webhooks.receive(delivery(event('evt_first')))).code, 'ACCEPTED')
  const full = await webhooks.receive(delivery(event('evt_second')))
  t.equal(full.status, 503)
  t.equal(full.code, 'QUEUE_FULL')
  t.equal(await webhooks.inbox.outcome?.('evt_second'), undefined)
  t.equal((await webhooks.receive(delivery(event('evt_first')))).code, 'DUPLICATE')
  t.equal(webhooks.inbox.size, 1)
})

t.test('done events are purged after retentionSeconds, and their ids may then come again', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  let now = Date.now()
  const inbox = sqliteInbox({ path, retentionSeconds: 60 })
  const webhooks = receiver(inbox, { clock: () => now, retry: { attempts: 1 } })
  t.teardown(() => webhooks.close())
  let calls = 0
  webhooks.on('action.completed', function maybe (evt) {
    calls++
    if (evt.id === 'evt_fails') throw new Error('no')
  })
  await webhooks.receive(delivery(event('evt_old')))
  await webhooks.receive(delivery(event('evt_fails')))
  await until(async () => (await inbox.outcome('evt_old'))?.state === 'done' && (await inbox.outcome('evt_fails'))?.state === 'dead', 'both to finish')
  t.same(await inbox.purge(), { done: 0, dead: 0 }, 'nothing is old enough yet')
  now += 61_000
  t.same(await inbox.purge(), { done: 1, dead: 0 }, 'the done event goes; the dead one is kept')
  t.equal(await inbox.outcome('evt_old'), undefined)
  t.equal((await inbox.outcome('evt_fails'))?.state, 'dead')
  t.equal((await webhooks.receive(delivery(event('evt_old'), undefined))).code, 'ACCEPTED')
  await until(() => calls === 3, 'the handler to run for the re-sent event')
})

t.test('an event its receivers died on every attempt is dead-lettered instead of run again', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const first = sqliteInbox({ path })
  await first.close(0)
  // What a crash loop leaves: every attempt started, none finished, the lease expired.
  const db = new Database(path)
  db.prepare("INSERT INTO sir_webhook_events (id, type, event, state, received_at, attempts, next_attempt_at, lease_owner, lease_until) VALUES ('evt_poison', 'action.completed', ?, 'pending', 1, 3, 1, 'gone', 1)")
    .run(JSON.stringify(event('evt_poison')))
  db.close()
  const webhooks = receiver(sqliteInbox({ path }))
  t.teardown(() => webhooks.close())
  let calls = 0
  const dead: unknown[] = []
  webhooks.on('action.completed', () => { calls++ })
  webhooks.onDeadLetter((entry) => { dead.push(entry) })
  await until(() => dead.length === 1, 'the dead letter')
  await sleep(100)
  t.equal(calls, 0, 'the handler is not run a fourth time')
  t.match(dead[0], { reason: 'handler_failed', attempts: 3, event: { id: 'evt_poison' } })
  t.match((await webhooks.inbox.outcome?.('evt_poison'))?.lastError, /stopped during each of 3 attempts/)
})

t.test('dead letters can be listed and re-driven without a receiver', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const webhooks = receiver(sqliteInbox({ path }), { retry: { attempts: 1 } })
  webhooks.on('action.completed', function broken () { throw new Error('broken') })
  await webhooks.receive(delivery(event('evt_admin')))
  await until(async () => (await webhooks.inbox.outcome?.('evt_admin'))?.state === 'dead', 'the dead letter')
  await webhooks.close()
  await t.rejects(async () => { await webhooks.inbox.deadLetters?.() }, /SQLite inbox is closed/, 'a closed inbox does not answer as if it were empty')
  // An admin script opens the same file.
  const admin = sqliteInbox({ path })
  t.teardown(() => admin.close(0))
  t.match(await admin.deadLetters(), [{ id: 'evt_admin', state: 'dead', lastError: 'broken: Error: broken', event: { id: 'evt_admin' } }])
  t.equal(await admin.redrive('evt_admin'), true)
  t.equal((await admin.outcome('evt_admin'))?.state, 'pending')
})

t.test('a handler that outlives leaseMs keeps its event: the lease is renewed, another process does not take it', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const calls: string[] = []
  const slowHandler = (name: string) => async () => {
    calls.push(name)
    await sleep(1_200)
  }
  const first = receiver(sqliteInbox({ path, leaseMs: 200, pollIntervalMs: 50 }))
  const second = receiver(sqliteInbox({ path, leaseMs: 200, pollIntervalMs: 50 }))
  t.teardown(() => Promise.all([first.close(), second.close()]))
  first.on('action.completed', slowHandler('first'))
  second.on('action.completed', slowHandler('second'))
  t.equal((await first.receive(delivery(event('evt_slow_handler')))).code, 'ACCEPTED')
  await until(async () => (await first.inbox.outcome?.('evt_slow_handler'))?.state === 'done', 'the event to finish')
  t.same(calls, ['first'], 'one process ran it, once')
  t.equal((await first.inbox.outcome?.('evt_slow_handler'))?.attempts, 1)
})
