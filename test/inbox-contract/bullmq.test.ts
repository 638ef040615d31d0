import { randomUUID } from 'node:crypto'
import t from 'tap'
import { bullmqInbox } from '../../src/bullmq/inbox.js'
import { redisForTests } from '../helpers/redis.js'
import { runInboxContract } from './scenarios.js'

const redis = await redisForTests(t)
if (redis.url === undefined) {
  t.plan(0, `BullMQ inbox contract skipped: no Redis (${redis.reason})`)
} else {
  const { url, connection } = redis
  runInboxContract(t, {
    name: 'bullmq',
    durable: true,
    place: async () => {
      // A queue of its own per test: tests share one Redis and must not see each other's jobs.
      const queueName = `contract-${randomUUID()}`
      return {
        inbox: () => bullmqInbox({ connection, queueName, lockDurationMs: 1000, stalledIntervalMs: 300 }),
        fixtureEnv: { SIR_STORE: 'bullmq', SIR_REDIS_URL: url, SIR_QUEUE: queueName, SIR_LEASE_MS: '1000' }
      }
    }
  })
}
