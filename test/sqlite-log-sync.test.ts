import fs, { renameSync, unlinkSync, writeFileSync } from 'node:fs'
import { syncBuiltinESMExports } from 'node:module'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { sqliteInbox } from '../src/sqlite/inbox.js'
import { WalSync } from '../src/sqlite/log-sync.js'
import { DurabilityUnknownError } from '../src/sqlite/write-errors.js'
import { tempDir } from './inbox-contract/scenarios.js'
import { delivery, event, receiver, sleep, until } from './inbox-contract/support.js'

type FsyncCallback = (error: NodeJS.ErrnoException | null) => void

/**
 * Replaces fs.fsync (the named export too) for the test: `hold` decides, for each
 * call on a file, when and how it answers. Records which paths were synced.
 */
function watchFsync (t: Test, hold: (path: string, answer: (error: NodeJS.ErrnoException | null) => void) => void): string[] {
  const original = { fsync: fs.fsync, open: fs.open }
  const paths = new Map<number, string>()
  const synced: string[] = []
  fs.open = ((path: fs.PathLike, flags: fs.OpenMode, callback: (error: NodeJS.ErrnoException | null, fd: number) => void) => {
    original.open(path, flags, (error, fd) => {
      if (error === null) paths.set(fd, String(path))
      callback(error, fd)
    })
  }) as typeof fs.open
  fs.fsync = ((fd: number, callback: FsyncCallback) => {
    const path = paths.get(fd) ?? `fd ${fd}`
    synced.push(path)
    original.fsync(fd, (error) => {
      if (error !== null) return callback(error)
      hold(path, callback)
    })
  }) as typeof fs.fsync
  syncBuiltinESMExports()
  t.teardown(() => {
    fs.fsync = original.fsync
    fs.open = original.open
    syncBuiltinESMExports()
  })
  return synced
}

/** Watches the file syncs: after `failNext()`, the next fsync of the -wal file fails with EIO; every other one succeeds. */
function failingWalFsync (t: Test): { failNext: () => void } {
  let failNext = false
  watchFsync(t, (file, answer) => {
    if (file.endsWith('-wal') && failNext) {
      failNext = false
      answer(Object.assign(new Error('simulated: EIO on fsync'), { code: 'EIO' }))
    } else {
      answer(null)
    }
  })
  return { failNext: () => { failNext = true } }
}

t.test('issue 22: an accept is answered only after its WAL is fsynced, and the fsync does not stop the event loop', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const synced = watchFsync(t, (file, answer) => {
    // The WAL's sync takes 300 ms (a disk under contention); the directory's is let through.
    if (file.endsWith('-wal')) setTimeout(() => { answer(null) }, 300)
    else answer(null)
  })
  // Polling every 20 ms: claims run while the fsync does.
  const webhooks = receiver(sqliteInbox({ path, pollIntervalMs: 20 }))
  t.teardown(() => webhooks.close())
  const handled: string[] = []
  webhooks.on('action.completed', function record (evt) { handled.push(evt.id) })
  let ticks = 0
  const ticker = setInterval(() => { ticks++ }, 10)
  t.teardown(() => { clearInterval(ticker) })
  const startedAt = performance.now()
  const answer = await webhooks.receive(delivery(event('evt_synced_first')))
  const tookMs = performance.now() - startedAt
  t.equal(answer.code, 'ACCEPTED')
  t.same(handled, [], 'no handler of this process started before the answer (its claims leave the id out until then)')
  t.ok(synced.some((file) => file === `${path}-wal`), `the WAL file was fsynced before the answer (synced: ${JSON.stringify(synced)})`)
  t.ok(tookMs >= 280, `the answer waited for that fsync (${tookMs.toFixed(0)} ms)`)
  // 300 ms at 10 ms a tick: a loop blocked for the fsync would see none of them.
  t.ok(ticks >= 10, `timers ran while the fsync did (${ticks} ticks of 10 ms)`)
  await until(() => handled.includes('evt_synced_first'), 'the event to be handled')
})

t.test('issue 22: once a WAL fsync fails, every delivery gets 503 and health() is degraded until a restart; what was accepted before still runs', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const walFsync = failingWalFsync(t)
  const webhooks = receiver(sqliteInbox({ path }))
  t.teardown(() => webhooks.close())
  const handled: string[] = []
  webhooks.on('action.completed', function record (evt) { handled.push(evt.id) })
  t.equal((await webhooks.receive(delivery(event('evt_before')))).code, 'ACCEPTED')
  walFsync.failNext()
  const first = await webhooks.receive(delivery(event('evt_sync_failed')))
  t.equal(first.code, 'INBOX_UNAVAILABLE', 'not acknowledged: the row may not be on disk')
  // Linux may have marked the failed pages clean: a later fsync would succeed without writing them.
  const retry = await webhooks.receive(delivery(event('evt_sync_failed')))
  t.equal(retry.code, 'INBOX_UNAVAILABLE', 'the retry is not told "duplicate" of a row that may not be on disk')
  t.equal((await webhooks.receive(delivery(event('evt_after')))).code, 'INBOX_UNAVAILABLE', 'nor is anything else acknowledged')
  const health = webhooks.health()
  t.equal(health.status, 'degraded')
  t.match(health.reasons.join('\n'), /fsync of the SQLite write-ahead log failed .*restart the receiver/)
  await until(() => handled.includes('evt_before'), 'the event accepted before to be handled')
})

t.test('issue 22: a commit made while a WAL fsync runs waits for the next one; the commits made meanwhile share it', async (t) => {
  const calls: Array<{ path: string, done: () => void }> = []
  const paths: string[] = []
  const sync = new WalSync('/data/inbox.db', {
    open: async (path) => paths.push(path) - 1,
    fsync: async (fd) => { await new Promise<void>((resolve) => { calls.push({ path: paths[fd]!, done: resolve }) }) },
    close: () => {}
  }).sync
  const settled: string[] = []
  const first = sync().then(() => { settled.push('first') })
  await sleep(5)
  t.same(calls.map(({ path }) => path), ['/data/inbox.db-wal'], 'one fsync of the WAL runs')
  // Committed after that fsync began: it may not cover them.
  const second = sync().then(() => { settled.push('second') })
  const third = sync().then(() => { settled.push('third') })
  calls.shift()!.done()
  await sleep(5)
  // The first sync of the file also syncs its directory, as SQLite does for a WAL it creates.
  t.same(calls.map(({ path }) => path), ['/data'])
  calls.shift()!.done()
  await first
  t.same(settled, ['first'], 'the later commits still wait')
  await sleep(5)
  t.same(calls.map(({ path }) => path), ['/data/inbox.db-wal'], 'one more fsync, for both of them (the directory is not synced again)')
  calls.shift()!.done()
  await Promise.all([second, third])
  t.same(settled, ['first', 'second', 'third'])
  t.same(paths, ['/data/inbox.db-wal', '/data'], 'the WAL file was opened once and stays open between syncs')
})

t.test('issue 22: a WAL fsync that hangs past acceptTimeoutMs answers 503 rather than hanging the delivery; once it lands, the retry is a duplicate', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const held: Array<() => void> = []
  let hang = false
  watchFsync(t, (file, answer) => {
    if (file.endsWith('-wal') && hang) held.push(() => { answer(null) })
    else answer(null)
  })
  const webhooks = receiver(sqliteInbox({ path, acceptTimeoutMs: 500 }))
  t.teardown(() => webhooks.close())
  const handled: string[] = []
  webhooks.on('action.completed', function record (evt) { handled.push(evt.id) })
  t.equal((await webhooks.receive(delivery(event('evt_warm')))).code, 'ACCEPTED', 'the first sync (and the directory\'s) goes through')
  hang = true
  const startedAt = performance.now()
  const first = await webhooks.receive(delivery(event('evt_hung')))
  const tookMs = performance.now() - startedAt
  t.equal(first.code, 'INBOX_UNAVAILABLE', 'not acknowledged while its fsync hangs')
  t.ok(tookMs < 3_000, `answered at the deadline, not when the disk came back (${tookMs.toFixed(0)} ms)`)
  t.ok(held.length >= 1, 'its fsync was still running')
  hang = false
  for (const release of held.splice(0)) release()
  const retry = await webhooks.receive(delivery(event('evt_hung')))
  t.equal(retry.code, 'DUPLICATE', 'the row reached the disk with that fsync: the retry is a duplicate')
  await until(() => handled.includes('evt_hung'), 'the event to be handled')
  await sleep(100)
  t.same(handled.filter((id) => id === 'evt_hung'), ['evt_hung'], 'handled once')
})

/** What `promise` settles to within `ms`, or 'still waiting': a test that must fail, not hang, when it never settles. */
async function within<T> (promise: Promise<T>, ms: number): Promise<T | 'still waiting'> {
  let timer: NodeJS.Timeout | undefined
  const result = await Promise.race([promise, new Promise<'still waiting'>((resolve) => { timer = setTimeout(() => { resolve('still waiting') }, ms) })])
  clearTimeout(timer)
  return result
}

/** Holds every fsync of the WAL while `hold.on`; `hold.release()` lets them finish. */
function holdWalSyncs (t: Test): { on: boolean, held: Array<() => void>, release: () => void } {
  const hold = {
    on: false,
    held: [] as Array<() => void>,
    release: () => { hold.on = false; for (const answer of hold.held.splice(0)) answer() }
  }
  watchFsync(t, (file, answer) => {
    if (file.endsWith('-wal') && hold.on) hold.held.push(() => { answer(null) })
    else answer(null)
  })
  // The disk comes back at the end, or the thread-pool fsync would keep the test process alive.
  t.teardown(() => { hold.release() })
  return hold
}

t.test('close(graceMs) resolves within about graceMs while a WAL fsync never returns, and the delivery waiting for it gets 503', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const hold = holdWalSyncs(t)
  // The delivery's own deadline is a minute away: only close() can answer it sooner.
  const webhooks = receiver(sqliteInbox({ path, acceptTimeoutMs: 60_000 }), { closeGraceMs: 300 })
  t.teardown(() => webhooks.close())
  t.equal((await webhooks.receive(delivery(event('evt_warm')))).code, 'ACCEPTED', 'the first sync (and the directory\'s) goes through')
  hold.on = true
  const answer = webhooks.receive(delivery(event('evt_hung_at_close')))
  await until(() => hold.held.length >= 1, 'the WAL fsync to hang')
  const startedAt = performance.now()
  const closed = await within(webhooks.close().then(() => performance.now() - startedAt), 10_000)
  t.not(closed, 'still waiting', 'close() did not wait for the hung fsync')
  // 300 ms of grace; the rest is a margin for a loaded machine.
  if (closed !== 'still waiting') t.ok(closed < 2_500, `close() resolved ${closed.toFixed(0)} ms after it was called (closeGraceMs 300)`)
  const answered = await within(answer, 1_000)
  t.equal(answered === 'still waiting' ? answered : answered.code, 'INBOX_UNAVAILABLE', 'not acknowledged: its commit is not known to be on disk')
  t.ok(hold.held.length >= 1, 'the fsync was still hung when close() returned')
})

const replacements: Array<[string, (path: string) => void, RegExp]> = [
  ['the database file is renamed away and another file put in its place', (path) => { renameSync(path, `${path}.moved`); writeFileSync(path, '') }, /database file .* was replaced/],
  ['the -wal file is deleted', (path) => { unlinkSync(`${path}-wal`) }, /-wal file .* was deleted/]
]
for (const [what, replace, reason] of replacements) {
  t.test(`an accept whose WAL fsync finishes after ${what} gets 503, and health() is degraded`, async (t) => {
    const path = join(tempDir(t), 'inbox.db')
    const hold = holdWalSyncs(t)
    // No timer check during the test: the check after the sync is what must catch it.
    const webhooks = receiver(sqliteInbox({ path, pollIntervalMs: 60_000 }))
    t.teardown(() => webhooks.close())
    t.equal((await webhooks.receive(delivery(event('evt_before_replace')))).code, 'ACCEPTED')
    hold.on = true
    // Committed (and checked) while the file was still the inbox's; its fsync is held.
    const answer = webhooks.receive(delivery(event('evt_synced_into_old_file')))
    await until(() => hold.held.length >= 1, 'the WAL fsync to be held')
    replace(path)
    hold.release()
    t.equal((await answer).code, 'INBOX_UNAVAILABLE', 'no 2xx for frames written to a file that is no longer the database')
    const health = webhooks.health()
    t.equal(health.status, 'degraded')
    t.match(health.reasons.join('\n'), reason)
    t.equal((await webhooks.receive(delivery(event('evt_after_replace')))).code, 'INBOX_UNAVAILABLE', 'nor anything after it')
  })
}

t.test('an admin write whose WAL fsync fails is reported as committed with durability unknown, not as failed', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const walFsync = failingWalFsync(t)
  const inbox = sqliteInbox({ path })
  const webhooks = receiver(inbox)
  t.teardown(() => webhooks.close())
  webhooks.on('action.completed', function record () {})
  t.equal((await webhooks.receive(delivery(event('evt_to_purge')))).code, 'ACCEPTED')
  await until(async () => (await inbox.outcome('evt_to_purge'))?.state === 'done', 'the event to be done')
  walFsync.failNext()
  const error: unknown = await inbox.purge({ before: new Date(Date.now() + 60_000) }).then(() => undefined, (caught: unknown) => caught)
  t.type(error, DurabilityUnknownError)
  const { code, committed, result, message } = error as DurabilityUnknownError
  t.equal(code, 'SQLITE_DURABILITY_UNKNOWN', 'a code of its own, not the code of a failed write')
  t.equal(committed, true)
  t.same(result, { done: 1, dead: 0 }, 'what the write returned')
  t.match(message, /committed, but whether it reached the disk is unknown .*EIO on fsync/)
  t.equal(await inbox.outcome('evt_to_purge'), undefined, 'the purge is in the file: a caller told "failed" would retry a write that happened')
})

t.test('WalSync.close() while an fsync hangs closes the WAL file only once that fsync ends, and a sync queued behind it opens the file no more', async (t) => {
  const held: Array<() => void> = []
  const closedFds: number[] = []
  let opened = 0
  const walSync = new WalSync('/data/inbox.db', {
    open: async () => opened++,
    fsync: async () => { await new Promise<void>((resolve) => { held.push(resolve) }) },
    close: (fd) => { closedFds.push(fd) }
  })
  // The first sync: the WAL file (fd 0), then its directory (fd 1, closed at once).
  const first = walSync.sync()
  await until(() => held.length === 1, 'the WAL fsync')
  held.shift()!()
  await until(() => held.length === 1, 'the directory fsync')
  held.shift()!()
  await first
  const hung = walSync.sync()
  await until(() => held.length === 1, 'the second WAL fsync')
  const queued = walSync.sync().then(() => 'synced', (error: Error) => error.message)
  walSync.close()
  await sleep(50)
  t.same(closedFds, [1], 'fd 0 is not closed under the fsync still running on it (its number could go to another file)')
  held.shift()!()
  await hung
  t.match(await queued, /closed before this fsync/, 'the sync queued behind it is refused')
  await sleep(10)
  t.same(closedFds, [1, 0], 'closed once its fsync ended')
  t.equal(opened, 2, 'the WAL file was not opened again')
})
