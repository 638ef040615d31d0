// Ordering on the BullMQ inbox: the property harness and the fixed scenarios every
// ordering store passes (test/ordering/), each case on a queue of its own.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { bullmqInbox, type BullmqInbox } from '../src/bullmq/inbox.js'
import type { Webhooks } from '../src/index.js'
import { until } from './inbox-contract/support.js'
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
  runOrderingProperty(t, { name: 'bullmq', inbox, settled }, 4)
  runOrderingScenarios(t, { name: 'bullmq', inbox, settled, durable: true })
}
