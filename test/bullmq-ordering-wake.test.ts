// Waking a parked job of an ordered key on the BullMQ inbox. A job that may not take its
// key is parked (delayed by PARK_MS, 30 s) and must be woken when the key frees: these
// tests widen the windows where a wake-up could be missed and require the next event of
// the key to start within a few seconds, far under PARK_MS.
import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { bullmqInbox } from '../src/bullmq/inbox.js'
import { jobIdFor } from '../src/bullmq/jobs.js'
import { PARK_MS, RedisOrderingStore } from '../src/bullmq/ordering-store.js'
import type { OrderedEventRef, TakeAnswer } from '../src/core/ordering/store.js'
import { delivery, receiver, sleep, until } from './inbox-contract/support.js'
import { redisForTests } from './helpers/redis.js'

/** Far under PARK_MS: a next event that waited for its park to run out misses it. */
const PROMPT_MS = 5_000

const redis = await redisForTests(t)
if (redis.url === undefined) {
  t.plan(0, `BullMQ ordering wake-up skipped: no Redis (${redis.reason})`)
} else {
  const { connection } = redis
  const byAction = { key: (event: { data: unknown }) => `action:${(event.data as { actionId: string }).actionId}` }
  const keyed = (id: string, second: number): Record<string, unknown> =>
    ({ id, type: 'action.completed', createdAt: new Date(Date.UTC(2026, 4, 10, 9, 0, second)).toISOString(), data: { actionId: 'a1' } })
  const gate = (): { promise: Promise<void>, open: () => void } => {
    let open: () => void = () => {}
    const promise = new Promise<void>((resolve) => { open = resolve })
    return { promise, open }
  }
  t.ok(PARK_MS >= 6 * PROMPT_MS, 'the bound is far under a park')

  t.test('bullmq: the key\'s holder releasing while the next event is between its take and its park still wakes it', async (t) => {
    const id = `evt_wake_${randomUUID()}`
    const holderId = `${id}_holder`
    const nextId = `${id}_next`
    const toldBusy = gate()
    const released = gate()
    // The window widened: the next event's take answers "busy", and the answer reaches
    // its job only once the holder's release (and the wake it tried) is over, so the
    // release finds the job still active, not delayed, and cannot promote it.
    const { take, release } = RedisOrderingStore.prototype
    RedisOrderingStore.prototype.take = async function (this: RedisOrderingStore, ref: OrderedEventRef, now: number): Promise<TakeAnswer> {
      const answer = await take.call(this, ref, now)
      if (ref.id === nextId && !answer.taken) {
        toldBusy.open()
        await released.promise
      }
      return answer
    }
    RedisOrderingStore.prototype.release = async function (this: RedisOrderingStore, ref: OrderedEventRef, handled: number | undefined): Promise<void> {
      await release.call(this, ref, handled)
      if (ref.id === holderId) released.open()
    }
    t.teardown(() => { Object.assign(RedisOrderingStore.prototype, { take, release }) })
    const inbox = bullmqInbox({ connection, queueName: `order-wake-${randomUUID()}` })
    const webhooks = receiver(inbox, { concurrency: 4, ordering: byAction })
    t.teardown(() => webhooks.close())
    const started = new Map<string, number>()
    webhooks.on('action.completed', async function ledger (event) {
      started.set(event.id, Date.now())
      if (event.id === holderId) await toldBusy.promise
    }, { name: 'ledger' })
    t.equal((await webhooks.receive(delivery(keyed(holderId, 1)))).status, 200)
    await until(() => started.has(holderId), 'the holder to start')
    t.equal((await webhooks.receive(delivery(keyed(nextId, 2)))).status, 200)
    await released.promise
    const releasedAt = Date.now()
    await until(() => started.has(nextId), `the next event of the key to start within ${PROMPT_MS} ms of the release, not after its ${PARK_MS} ms park`, PROMPT_MS)
    t.ok((started.get(nextId) ?? Infinity) - releasedAt < PROMPT_MS, 'woken promptly')
    t.same([...started.keys()], [holderId, nextId], 'one after the other, oldest first')
  })

  const stalledOut = async (t: Test, onDeadLetter: 'skip' | 'block'): Promise<void> => {
    const queueName = `order-stall-${randomUUID()}`
    const id = `evt_stall_${randomUUID()}`
    const holderId = `${id}_holder`
    const nextId = `${id}_next`
    const parked = gate()
    const hung = gate()
    const { take } = RedisOrderingStore.prototype
    RedisOrderingStore.prototype.take = async function (this: RedisOrderingStore, ref: OrderedEventRef, now: number): Promise<TakeAnswer> {
      const answer = await take.call(this, ref, now)
      if (ref.id === nextId && !answer.taken) parked.open()
      return answer
    }
    t.teardown(() => { Object.assign(RedisOrderingStore.prototype, { take }) })
    // No recovery allowed: the first stall fails the job, as the fourth does by default.
    const inbox = bullmqInbox({ connection, queueName, lockDurationMs: 500, stalledIntervalMs: 100, maxStalledCount: 0 })
    const webhooks = receiver(inbox, { concurrency: 4, ordering: { ...byAction, onDeadLetter } })
    t.teardown(async () => { hung.open(); await webhooks.close() })
    const started = new Map<string, number>()
    webhooks.on('action.completed', async function ledger (event) {
      started.set(event.id, Date.now())
      // The holder's run hangs: as far as Redis can tell, its process died.
      if (event.id === holderId) await hung.promise
    }, { name: 'ledger' })
    t.equal((await webhooks.receive(delivery(keyed(holderId, 1)))).status, 200)
    await until(() => started.has(holderId), 'the holder to start')
    t.equal((await webhooks.receive(delivery(keyed(nextId, 2)))).status, 200)
    await parked.promise
    // The holder's lock lost (its worker gone): BullMQ's stalled check takes the job back and,
    // past maxStalledCount, fails it when a worker picks it up; no handler of ours says so.
    const { Redis } = await import('ioredis')
    const client = new Redis(connection as object)
    t.teardown(() => { client.disconnect() })
    const lostAt = Date.now()
    await client.del(`bull:${queueName}:${jobIdFor(holderId)}:lock`)
    await until(async () => (await inbox.outcome(holderId))?.state === 'dead', 'the holder to be failed for stalling')
    t.match(await inbox.outcome(holderId), { state: 'dead', lastError: /stalled/ }, 'the holder is dead, failed by BullMQ for stalling')
    if (onDeadLetter === 'block') {
      // Blocked at once by the dead holder, named by its event id; unblocking moves the key on.
      await until(async () => (await webhooks.ordering.blocked()).length > 0, 'the key to be blocked', PROMPT_MS)
      t.match(await webhooks.ordering.blocked(), [{ key: 'action:a1', eventId: holderId }], 'blocked() names the key and the dead holder')
      t.notOk(started.has(nextId), 'the next event waits behind the block')
      t.equal(await webhooks.ordering.unblock('action:a1'), true)
    }
    const from = onDeadLetter === 'block' ? Date.now() : lostAt
    await until(() => started.has(nextId), `the next event of the key to start within ${PROMPT_MS} ms, not after its ${PARK_MS} ms park`, PROMPT_MS)
    t.ok((started.get(nextId) ?? Infinity) - from < 2 * PROMPT_MS, 'woken promptly')
  }

  t.test('bullmq: a holder that BullMQ fails for stalling too often frees its key at once; the next event does not wait out its park', async (t) => {
    await stalledOut(t, 'skip')
  })

  t.test('bullmq: under onDeadLetter block, a holder that BullMQ fails for stalling too often blocks its key at once; unblock wakes the next event', async (t) => {
    await stalledOut(t, 'block')
  })

  t.test('bullmq: a parked job woken into a new run while its parking run is still ending keeps its new run\'s lock: it runs once', async (t) => {
    const id = `evt_relock_${randomUUID()}`
    const holderId = `${id}_holder`
    const nextId = `${id}_next`
    const toldBusy = gate()
    const rerun = gate()
    // The window widened: the parking run's second look at the key is held until the job,
    // woken by the holder's release, runs again in this same worker. BullMQ stops renewing a
    // job's lock by its id when a run of it ends, so a parking run that ended after its
    // woken run began would leave that run without a lock: BullMQ would take it back and
    // run it a second time, at once, on the same key.
    const { take, wakeHead } = RedisOrderingStore.prototype
    RedisOrderingStore.prototype.take = async function (this: RedisOrderingStore, ref: OrderedEventRef, now: number): Promise<TakeAnswer> {
      const answer = await take.call(this, ref, now)
      if (ref.id === nextId && !answer.taken) toldBusy.open()
      return answer
    }
    RedisOrderingStore.prototype.wakeHead = async function (this: RedisOrderingStore, key: string): Promise<void> {
      await Promise.race([rerun.promise, sleep(3_000)])
      await wakeHead.call(this, key)
    }
    t.teardown(() => { Object.assign(RedisOrderingStore.prototype, { take, wakeHead }) })
    const inbox = bullmqInbox({ connection, queueName: `order-relock-${randomUUID()}`, lockDurationMs: 1000, stalledIntervalMs: 200 })
    const webhooks = receiver(inbox, { concurrency: 4, ordering: byAction })
    t.teardown(() => webhooks.close())
    const starts: string[] = []
    let running = 0
    let most = 0
    webhooks.on('action.completed', async function ledger (event) {
      starts.push(event.id)
      running += 1
      most = Math.max(most, running)
      if (event.id === holderId) await toldBusy.promise
      if (event.id === nextId) {
        rerun.open()
        // Longer than the lock: only a renewed lock keeps the run its own.
        await sleep(2_500)
      }
      running -= 1
    }, { name: 'ledger' })
    t.equal((await webhooks.receive(delivery(keyed(holderId, 1)))).status, 200)
    await until(() => starts.includes(holderId), 'the holder to start')
    t.equal((await webhooks.receive(delivery(keyed(nextId, 2)))).status, 200)
    await until(async () => (await inbox.outcome(nextId))?.state !== 'pending', 'the next event to finish', 30_000)
    await sleep(500)
    t.match(await inbox.outcome(nextId), { state: 'done' }, 'done, not dead-lettered for stalling')
    t.same(starts, [holderId, nextId], 'each ran once, oldest first')
    t.equal(most, 1, 'never two runs of the key at once')
  })
}
