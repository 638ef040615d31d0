import fs from 'node:fs'
import { syncBuiltinESMExports } from 'node:module'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { sqliteInbox } from '../src/sqlite/inbox.js'
import { WalSync } from '../src/sqlite/log-sync.js'
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
  let failNext = false
  watchFsync(t, (file, answer) => {
    if (file.endsWith('-wal') && failNext) {
      failNext = false
      answer(Object.assign(new Error('simulated: EIO on fsync'), { code: 'EIO' }))
    } else {
      answer(null)
    }
  })
  const webhooks = receiver(sqliteInbox({ path }))
  t.teardown(() => webhooks.close())
  const handled: string[] = []
  webhooks.on('action.completed', function record (evt) { handled.push(evt.id) })
  t.equal((await webhooks.receive(delivery(event('evt_before')))).code, 'ACCEPTED')
  failNext = true
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
