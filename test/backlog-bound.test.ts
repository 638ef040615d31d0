import { join } from 'node:path'
import t from 'tap'
import { Webhooks } from '../src/index.js'
import { sqliteInbox } from '../src/sqlite/inbox.js'
import { postgresInbox } from '../src/postgres/inbox.js'
import { bullmqInbox } from '../src/bullmq/inbox.js'
import { DiskFloor } from '../src/sqlite/disk-floor.js'
import { SqliteBacklog } from '../src/sqlite/backlog.js'
import { parseMemoryInfo, RedisMemory } from '../src/bullmq/memory-floor.js'
import { tempDir } from './inbox-contract/scenarios.js'
import { delivery, event, receiver, SECRET, until } from './inbox-contract/support.js'
import { absorbsPastMemoryBound } from './helpers/absorb.js'

// Issue 22, item 1: a durable inbox's backlog is bounded by its store (maxBacklog,
// a free-disk or Redis-memory floor), not by the memory inbox's maxQueueSize.

/** A handler that waits until `release()`. */
function gate (): { wait: () => Promise<void>, release: () => void } {
  let open: () => void = () => {}
  const opened = new Promise<void>((resolve) => { open = resolve })
  return { wait: async () => { await opened }, release: () => { open() } }
}

t.test('maxBacklog is checked at creation on every durable inbox, the message naming it', async (t) => {
  t.throws(() => sqliteInbox({ path: 'never-created.db', maxBacklog: 0 }), { message: 'sir-webhooks: "maxBacklog" must be a positive integer, got 0' })
  t.throws(() => sqliteInbox({ path: 'never-created.db', minFreeDiskBytes: -1 }), { message: 'sir-webhooks: "minFreeDiskBytes" must be a non-negative integer, got -1' })
  t.throws(() => postgresInbox({ connectionString: 'postgres://nowhere/db', maxBacklog: 1.5 }), { message: 'sir-webhooks: "maxBacklog" must be a positive integer, got 1.5' })
  t.throws(() => bullmqInbox({ connection: { host: '127.0.0.1', port: 1 }, maxBacklog: '10' as never }), { message: 'sir-webhooks: "maxBacklog" must be a positive integer, got "10"' })
})

t.test('degradedQueueSize follows the bound that answers 503: maxBacklog on a durable inbox, maxQueueSize on the memory one', async (t) => {
  const dir = tempDir(t)
  // Each receiver starts its inbox; they are closed before the directory goes, or
  // a running SQLite inbox finds its file deleted under it and writes it again.
  const made: Webhooks[] = []
  const options = (inbox?: ReturnType<typeof sqliteInbox> | ReturnType<typeof postgresInbox>, extra: { maxQueueSize?: number } = {}): number => {
    const webhooks = new Webhooks({ secret: SECRET, ...(inbox === undefined ? {} : { inbox }), ...extra })
    made.push(webhooks)
    return webhooks.options.degradedQueueSize
  }
  t.equal(options(), 8_000, 'memory: 80% of maxQueueSize 10 000')
  t.equal(options(sqliteInbox({ path: join(dir, 'a.db') })), 800_000, 'SQLite, defaults: 80% of maxBacklog 1 000 000, not 8 000')
  t.equal(options(postgresInbox({ connectionString: 'postgres://nowhere/db' })), 800_000, 'Postgres, defaults')
  t.equal(options(sqliteInbox({ path: join(dir, 'b.db'), maxBacklog: 50 })), 40)
  t.equal(options(sqliteInbox({ path: join(dir, 'c.db') }), { maxQueueSize: 100 }), 80, 'an explicit maxQueueSize is the lower bound')
  t.equal(options(sqliteInbox({ path: join(dir, 'd.db'), maxBacklog: 50 }), { maxQueueSize: 100 }), 40, 'the lower of the two wins')
  await Promise.all(made.map(async (webhooks) => { await webhooks.close() }))
})

t.test('SQLite with the defaults takes more than maxQueueSize\'s 10 000 waiting events, and health() stays ok', async (t) => {
  await absorbsPastMemoryBound(t, sqliteInbox({ path: join(tempDir(t), 'inbox.db') }))
})

t.test('SQLite: a small maxBacklog answers 503 QUEUE_FULL with Retry-After, and takes events again once handlers finish', async (t) => {
  const webhooks = receiver(sqliteInbox({ path: join(tempDir(t), 'inbox.db'), pollIntervalMs: 50 }), { retryAfterSeconds: 4, concurrency: 1 })
  t.teardown(() => webhooks.close())
  const inbox = sqliteInbox({ path: join(tempDir(t), 'other.db'), maxBacklog: 2 })
  const bounded = receiver(inbox, { retryAfterSeconds: 4, concurrency: 1 })
  t.teardown(() => bounded.close())
  const held = gate()
  const handled: string[] = []
  bounded.on('action.completed', async (evt) => { await held.wait(); handled.push(evt.id) }, { name: 'record' })
  t.equal((await bounded.receive(delivery(event('evt_1')))).code, 'ACCEPTED')
  t.equal((await bounded.receive(delivery(event('evt_2')))).code, 'ACCEPTED')
  const full = await bounded.receive(delivery(event('evt_3')))
  t.equal(full.status, 503)
  t.equal(full.code, 'QUEUE_FULL')
  t.equal(full.headers['retry-after'], '4')
  t.equal(await bounded.inbox.outcome?.('evt_3'), undefined, 'nothing recorded')
  t.equal((await bounded.receive(delivery(event('evt_2')))).code, 'DUPLICATE', 'a duplicate is still one when full')
  held.release()
  await until(() => handled.length === 2, 'the two events')
  t.equal((await bounded.receive(delivery(event('evt_3')))).code, 'ACCEPTED', 'room again: the retry is taken')
  await until(() => handled.length === 3, 'the retried event')
  t.same(handled.sort(), ['evt_1', 'evt_2', 'evt_3'])
})

t.test('SQLite: an explicit maxQueueSize is honoured with a durable inbox (the lower bound wins), not ignored', async (t) => {
  const webhooks = receiver(sqliteInbox({ path: join(tempDir(t), 'inbox.db'), maxBacklog: 5 }), { maxQueueSize: 2 })
  t.teardown(() => webhooks.close())
  t.equal((await webhooks.receive(delivery(event('evt_a')))).code, 'ACCEPTED')
  t.equal((await webhooks.receive(delivery(event('evt_b')))).code, 'ACCEPTED')
  t.equal((await webhooks.receive(delivery(event('evt_c')))).code, 'QUEUE_FULL', 'maxQueueSize 2 bounds the backlog')
  const roomy = receiver(sqliteInbox({ path: join(tempDir(t), 'roomy.db'), maxBacklog: 2 }), { maxQueueSize: 5 })
  t.teardown(() => roomy.close())
  t.equal((await roomy.receive(delivery(event('evt_a')))).code, 'ACCEPTED')
  t.equal((await roomy.receive(delivery(event('evt_b')))).code, 'ACCEPTED')
  t.equal((await roomy.receive(delivery(event('evt_c')))).code, 'QUEUE_FULL', 'maxBacklog 2 bounds it when lower')
})

t.test('SQLite: processes sharing the file count each other\'s accepts within pollIntervalMs', async (t) => {
  const path = join(tempDir(t), 'shared.db')
  const first = receiver(sqliteInbox({ path, maxBacklog: 3, pollIntervalMs: 50 }))
  const second = receiver(sqliteInbox({ path, maxBacklog: 3, pollIntervalMs: 50 }))
  t.teardown(async () => { await first.close(); await second.close() })
  t.equal((await first.receive(delivery(event('evt_x1')))).code, 'ACCEPTED')
  t.equal((await second.receive(delivery(event('evt_x2')))).code, 'ACCEPTED')
  t.equal((await second.receive(delivery(event('evt_x3')))).code, 'ACCEPTED')
  await until(() => first.inbox.size === 3, 'the first process to count the file again')
  t.equal((await first.receive(delivery(event('evt_x4')))).code, 'QUEUE_FULL', 'three pending in the file, whoever took them')
})

t.test('SQLite: under the free-disk floor deliveries get 503 QUEUE_FULL and health() says why', async (t) => {
  // No disk has 2^53 bytes free: the real statfs reading is under this floor.
  const webhooks = receiver(sqliteInbox({ path: join(tempDir(t), 'inbox.db'), minFreeDiskBytes: Number.MAX_SAFE_INTEGER }), { retryAfterSeconds: 9 })
  t.teardown(() => webhooks.close())
  const refused = await webhooks.receive(delivery(event('evt_no_room')))
  t.equal(refused.status, 503)
  t.equal(refused.code, 'QUEUE_FULL')
  t.equal(refused.headers['retry-after'], '9')
  const health = webhooks.health()
  t.equal(health.status, 'degraded')
  t.match(health.reasons, [/the disk holding the SQLite inbox has \d+ MiB free, under minFreeDiskBytes/])
  await until(() => webhooks.log.some((entry) => entry.level === 'error' && /^the disk holding the SQLite inbox has \d+ MiB free/.test(entry.msg ?? '')), 'the log line, at the next reading')
  t.equal(webhooks.log.filter((entry) => /the disk holding the SQLite inbox/.test(entry.msg ?? '')).length, 1, 'logged once, not per delivery')
})

t.test('the disk floor: under it with the reading injected, room again once space is freed', async (t) => {
  let free = 100 * 1_048_576
  const floor = new DiskFloor('/some/dir/inbox.db', 256 * 1_048_576, async (directory) => {
    t.equal(directory, '/some/dir', 'the directory holding the file is read')
    return free
  })
  t.equal(floor.low, false, 'unknown before the first reading: not refused for it')
  t.equal(await floor.check(), true)
  t.equal(floor.reason(), 'the disk holding the SQLite inbox has 100 MiB free, under minFreeDiskBytes (256 MiB): deliveries get 503 until space is freed')
  free = 300 * 1_048_576
  t.equal(await floor.check(), false, 'room again')
  t.equal(floor.reason(), undefined)
  const off = new DiskFloor('/x/inbox.db', 0, async () => 0)
  t.equal(await off.check(), false, 'minFreeDiskBytes 0 turns the check off')
})

t.test('the Redis memory floor: full past 90% of maxmemory when one is set, with the reading injected', async (t) => {
  t.same(parseMemoryInfo('# Memory\r\nused_memory:1000\r\nused_memory_human:1000B\r\nmaxmemory:0\r\nmaxmemory_human:0B\r\nmaxmemory_policy:noeviction\r\n'), { used: 1000, max: 0, policy: 'noeviction' })
  t.equal(parseMemoryInfo('# Server\r\nredis_version:7\r\n'), undefined)
  let info = 'used_memory:950\r\nmaxmemory:1000\r\n'
  const memory = new RedisMemory(async () => info)
  t.equal(await memory.check(), true)
  t.match(memory.reason(), /^Redis uses 0 MiB of its maxmemory 0 MiB \(past 90%\)/)
  info = 'used_memory:800\r\nmaxmemory:1000\r\n'
  t.equal(await memory.check(), false, 'room again')
  info = 'used_memory:5000\r\nmaxmemory:0\r\n'
  t.equal(await memory.check(), false, 'no maxmemory: no floor, the count bound only')
  info = 'used_memory:999\r\nmaxmemory:1000\r\nmaxmemory_policy:allkeys-lru\r\n'
  t.equal(await memory.check(), false, 'a Redis that evicts every key sits at its limit by design: no floor')
  info = 'used_memory:999\r\nmaxmemory:1000\r\nmaxmemory_policy:volatile-lru\r\n'
  t.equal(await memory.check(), true, 'one that evicts only keys with a TTL refuses the jobs\' writes at its limit: the floor holds')
})

t.test('SQLite backlog count: no count(*) per accept, a recount before refusing, and timer recounts capped at 1% of the time', async (t) => {
  let counts = 0
  let pending = 0
  let countTakesMs = 0
  const backlog = new SqliteBacklog(() => {
    counts++
    const until = performance.now() + countTakesMs
    while (performance.now() < until) { /* a slow count(*) */ }
    return pending
  }, 10)
  let admitted = 0
  for (let index = 0; index < 1_000; index++) {
    if (backlog.admits(5_000)) admitted++
    backlog.added(1)
    pending++
  }
  t.equal(admitted, 1_000)
  t.equal(counts, 1, 'a thousand accepts, one count (the first)')
  backlog.finished(400)
  pending -= 400
  t.equal(backlog.size, 600, 'finished events leave the count at once')
  pending += 50 // another process's accepts, unseen until the next count
  t.equal(backlog.admits(601), true, 'under the bound by the kept count: no count')
  t.equal(counts, 1)
  await new Promise((resolve) => setTimeout(resolve, 120))
  t.equal(backlog.admits(600), false, 'a count that says full is taken again before refusing')
  t.equal(counts, 2)
  t.equal(backlog.size, 650, 'and holds the other process\'s accepts')
  t.equal(backlog.admits(650), false, 'full')
  t.equal(counts, 2, 'not counted again within 100 ms')
  pending -= 100
  await new Promise((resolve) => setTimeout(resolve, 120))
  t.equal(backlog.admits(650), true, 'room again once a count finds it')
  t.equal(counts, 3)
  countTakesMs = 5
  await new Promise((resolve) => setTimeout(resolve, 20))
  backlog.refreshIfDue()
  t.equal(counts, 4, 'the timer counts once the poll interval has passed')
  await new Promise((resolve) => setTimeout(resolve, 20))
  backlog.refreshIfDue()
  t.equal(counts, 4, 'a 5 ms count is taken at most every 500 ms, whatever the poll interval')
})
