// Ordering on the BullMQ inbox: the property harness and the fixed scenarios every
// ordering store passes (test/ordering/), each case on a queue of its own.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { bullmqInbox, type BullmqInbox } from '../src/bullmq/inbox.js'
import type { Webhooks } from '../src/index.js'
import { describeOutcome } from '../src/cli/inbox-format.js'
import { delivery, receiver, sleep, until } from './inbox-contract/support.js'
import { redisForTests } from './helpers/redis.js'
import { runOrderingProperty } from './ordering/property.js'
import { runOrderingScenarios } from './ordering/scenarios.js'

const redis = await redisForTests(t)
if (redis.url === undefined) {
  t.plan(0, `BullMQ ordering skipped: no Redis (${redis.reason})`)
} else {
  const { connection } = redis
  const inbox = (): BullmqInbox => bullmqInbox({ connection, queueName: `order-${randomUUID()}` })
  // No idle() on a queue other receivers may feed: done when the queue holds nothing unfinished.
  const settled = async (webhooks: Webhooks): Promise<void> => {
    const queue = webhooks.inbox as BullmqInbox
    await until(async () => (await queue.counts()).pending === 0 && queue.running === 0, 'the queue to drain', 60_000)
  }
  runOrderingProperty(t, { name: 'bullmq', inbox, settled }, 6)
  runOrderingScenarios(t, { name: 'bullmq', inbox, settled, durable: true })
}

if (redis.url !== undefined) {
  const { connection } = redis
  const byAction = { key: (event: { data: unknown }) => `action:${(event.data as { actionId: string }).actionId}` }
  const keyed = (id: string, second: number): Record<string, unknown> =>
    ({ id, type: 'action.completed', createdAt: new Date(Date.UTC(2026, 4, 10, 9, 0, second)).toISOString(), data: { actionId: 'a1' } })
  const drained = async (inbox: BullmqInbox): Promise<void> => {
    await until(async () => (await inbox.counts()).pending === 0 && inbox.running === 0, 'the queue to drain', 30_000)
  }

  t.test('bullmq: a stale event skipped by skipStale is done with the outcome stale, in outcome(id) and inbox show', async (t) => {
    const inbox = bullmqInbox({ connection, queueName: `order-${randomUUID()}` })
    const webhooks = receiver(inbox, { ordering: { ...byAction, skipStale: true } })
    t.teardown(() => webhooks.close())
    const ran: string[] = []
    webhooks.on('action.completed', function ledger (event) { ran.push(event.id) }, { name: 'ledger' })
    const id = `evt_obq_stale_${randomUUID()}`
    await webhooks.receive(delivery(keyed(`${id}_newer`, 9)))
    await drained(inbox)
    await webhooks.receive(delivery(keyed(`${id}_older`, 3)))
    await drained(inbox)
    t.same(ran, [`${id}_newer`], 'the older one did not run')
    t.match(await inbox.outcome(`${id}_older`), { state: 'done', skipped: 'stale', orderingKey: String })
    t.notOk((await inbox.outcome(`${id}_newer`))?.skipped, 'a handled event has no skipped outcome')
    t.match(describeOutcome(await inbox.outcome(`${id}_older`) as NonNullable<Awaited<ReturnType<typeof inbox.outcome>>>), /^outcome +stale: not run/m)
  })

  t.test('bullmq: an ordered event deferred by flow control keeps its key; a newer one does not pass it', async (t) => {
    const inbox = bullmqInbox({ connection, queueName: `order-${randomUUID()}` })
    const webhooks = receiver(inbox, { concurrency: 10, ordering: byAction })
    t.teardown(() => webhooks.close())
    const ran: Array<{ id: string, stale: boolean | undefined }> = []
    // One token each 400 ms: the second and third event are deferred by the rate, not by their key.
    webhooks.on('action.completed', function ledger (event, { ordering }) { ran.push({ id: event.id.slice(-2), stale: ordering?.stale }) },
      { name: 'ledger', rate: { perSecond: 2.5, burst: 1 } })
    const id = `evt_obq_flow_${randomUUID()}`
    for (const [suffix, second] of [['_a', 1], ['_b', 2], ['_c', 3], ['_d', 4]] as const) await webhooks.receive(delivery(keyed(`${id}${suffix}`, second)))
    await drained(inbox)
    t.same(ran, [{ id: '_a', stale: false }, { id: '_b', stale: false }, { id: '_c', stale: false }, { id: '_d', stale: false }], 'in createdAt order, once each, none stale')
  })

  t.test('bullmq: a key idle for the dedupe window forgets its newest handled createdAt; until then Redis keeps it', async (t) => {
    const queueName = `order-${randomUUID()}`
    const inbox = bullmqInbox({ connection, queueName })
    const webhooks = receiver(inbox, { ordering: byAction })
    t.teardown(() => webhooks.close())
    webhooks.on('action.completed', function ledger () {}, { name: 'ledger' })
    await webhooks.receive(delivery(keyed(`evt_obq_ttl_${randomUUID()}`, 9)))
    await drained(inbox)
    await sleep(50)
    const { Redis } = await import('ioredis')
    const client = new Redis(connection as object)
    t.teardown(() => { client.disconnect() })
    const state = `bull:${queueName}:sir-order:state:action:a1`
    t.equal(await client.hget(state, 'newest'), String(Date.UTC(2026, 4, 10, 9, 0, 9)), 'the newest handled createdAt is in Redis')
    const ttl = await client.pttl(state)
    t.ok(ttl > 604_700_000 && ttl <= 604_800_000, `kept for the dedupe window (7 days) once the key is idle (${ttl} ms left)`)
    t.equal(await client.zcard(`bull:${queueName}:sir-order:line:action:a1`), 0, 'the key\'s line is empty')
  })
}

if (redis.url !== undefined) {
  const { connection } = redis
  t.test('bullmq: a hot key on two receivers of one queue runs strictly one at a time, oldest createdAt first', async (t) => {
    const queueName = `order-hot-${randomUUID()}`
    const options = { concurrency: 8, ordering: { key: () => 'hot' } }
    const inboxes = [bullmqInbox({ connection, queueName }), bullmqInbox({ connection, queueName })]
    const [a, b] = inboxes.map((inbox) => receiver(inbox, options)) as [ReturnType<typeof receiver>, ReturnType<typeof receiver>]
    t.teardown(async () => { await Promise.all([a.close(), b.close()]) })
    let active = 0
    let most = 0
    const ran: Array<{ by: string, createdAt: number }> = []
    let allAccepted: () => void = () => {}
    const accepted = new Promise<void>((resolve) => { allAccepted = resolve })
    for (const [by, webhooks] of [['a', a], ['b', b]] as const) {
      webhooks.on('action.completed', async function ledger (event) {
        active += 1
        most = Math.max(most, active)
        ran.push({ by, createdAt: Date.parse(event.createdAt) })
        // The first run holds the key until every event is accepted: the rest must then run oldest first.
        if (ran.length === 1) await accepted
        await sleep(2)
        active -= 1
      }, { name: 'ledger' })
    }
    // All accepted before the first can finish: 120 events, created in scrambled order, half through each receiver.
    const id = `evt_obq_hot_${randomUUID()}`
    const seconds = Array.from({ length: 120 }, (_, index) => (index * 37) % 120)
    await Promise.all(seconds.map(async (second, index) => {
      const body = { id: `${id}_${index}`, type: 'action.completed', createdAt: new Date(Date.UTC(2026, 4, 10, 9, 0, 0) + second * 1000).toISOString(), data: { actionId: 'x' } }
      t.equal((await (index % 2 === 0 ? a : b).receive(delivery(body))).status, 200)
    }))
    allAccepted()
    await until(() => ran.length === 120, 'every event to run', 60_000)
    await sleep(50)
    t.equal(most, 1, 'never two runs of the key at once, across both receivers')
    t.equal(ran.length, 120, 'each ran once')
    t.ok(ran.some((run) => run.by === 'a') && ran.some((run) => run.by === 'b'), 'both receivers ran some')
    const afterFirst = ran.slice(1).map((run) => run.createdAt)
    t.same(afterFirst, [...afterFirst].sort((x, y) => x - y), 'after the first (held until all were accepted), oldest createdAt first')
  })
}
