import { join } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { sqliteInbox } from '../src/sqlite/inbox.js'
import { tempDir } from './inbox-contract/scenarios.js'
import { delivery, event, receiver, until } from './inbox-contract/support.js'

/**
 * The longest the event loop went without running a 10 ms timer, from now until
 * `stop()`: a store that waits synchronously for a lock shows up as a long gap.
 */
function loopWatch (): { stop: () => number } {
  let last = performance.now()
  let longest = 0
  const timer = setInterval(() => {
    const now = performance.now()
    longest = Math.max(longest, now - last)
    last = now
  }, 10)
  return {
    stop: () => {
      clearInterval(timer)
      return Math.max(longest, performance.now() - last)
    }
  }
}

t.test('issue 12: with another process holding the write lock, each delivery is answered within acceptTimeoutMs, and the event loop keeps running', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const acceptTimeoutMs = 600
  const inbox = sqliteInbox({ path, acceptTimeoutMs, pollIntervalMs: 50 })
  const webhooks = receiver(inbox, { retryAfterSeconds: 4 })
  t.teardown(() => webhooks.close())
  let releaseHandlers = (): void => {}
  const handlersMayEnd = new Promise<void>((resolve) => { releaseHandlers = resolve })
  t.teardown(releaseHandlers)
  let started = 0
  webhooks.on('action.completed', async function slow () {
    started++
    await handlersMayEnd
  })
  for (const id of ['evt_a', 'evt_b', 'evt_c']) t.equal((await webhooks.receive(delivery(event(id)))).status, 200)
  await until(() => started === 3, 'three handlers to start')

  const locker = new Database(path)
  t.teardown(() => { if (locker.open) locker.close() })
  locker.exec('BEGIN IMMEDIATE')
  const watch = loopWatch()
  // Three outcome writes now wait for the lock, as the accept below does. Waited
  // for synchronously, each would freeze the process for the whole timeout.
  const startedAt = performance.now()
  releaseHandlers()
  // The delivery arrives while those writes wait.
  await new Promise((resolve) => setTimeout(resolve, 50))
  const answer = await webhooks.receive(delivery(event('evt_locked_out')))
  const tookMs = performance.now() - startedAt
  const longestGapMs = watch.stop()
  t.equal(answer.status, 503)
  t.equal(answer.code, 'INBOX_UNAVAILABLE')
  t.equal(answer.headers['retry-after'], '4')
  t.ok(tookMs >= acceptTimeoutMs, `the delivery waited for the lock until its deadline (${Math.round(tookMs)} ms)`)
  t.ok(tookMs < acceptTimeoutMs + 700, `and was answered soon after it (${Math.round(tookMs)} ms for acceptTimeoutMs ${acceptTimeoutMs})`)
  t.ok(longestGapMs < 300, `the event loop never stalled for the lock (longest gap ${Math.round(longestGapMs)} ms)`)

  locker.exec('ROLLBACK')
  locker.close()
  for (const id of ['evt_a', 'evt_b', 'evt_c']) {
    await until(async () => (await inbox.outcome(id))?.state === 'done', `the outcome of ${id}, written once the lock was free`)
  }
  t.equal(await inbox.outcome('evt_locked_out'), undefined, 'the refused delivery recorded nothing')
  t.same(inbox.health(), { status: 'ok', reasons: [] }, 'a lock held elsewhere is contention, not damage')
  t.equal((await webhooks.receive(delivery(event('evt_locked_out')))).code, 'ACCEPTED', "the sender's retry is accepted")
})

t.test('acceptTimeoutMs 0: the first try is made, and a locked file answers 503 at once', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const webhooks = receiver(sqliteInbox({ path, acceptTimeoutMs: 0 }))
  t.teardown(() => webhooks.close())
  t.equal((await webhooks.receive(delivery(event('evt_free')))).code, 'ACCEPTED', 'with the lock free, accepted')
  const locker = new Database(path)
  t.teardown(() => { if (locker.open) locker.close() })
  locker.exec('BEGIN IMMEDIATE')
  const startedAt = performance.now()
  t.equal((await webhooks.receive(delivery(event('evt_busy')))).code, 'INBOX_UNAVAILABLE')
  t.ok(performance.now() - startedAt < 500, 'without waiting for the lock')
  locker.exec('ROLLBACK')
})
