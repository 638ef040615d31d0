import { randomUUID } from 'node:crypto'
import t from 'tap'
import { bullmqInbox } from '../src/bullmq/inbox.js'
import { redisForTests } from './helpers/redis.js'
import { runFlowScenarios } from './flow/scenarios.js'

const redis = await redisForTests(t)
if (redis.url === undefined) {
  t.plan(0, `BullMQ flow control skipped: no Redis (${redis.reason})`)
} else {
  const { connection } = redis
  // A queue of its own per test: tests share one Redis and must not see each other's jobs.
  runFlowScenarios(t, { name: 'bullmq', inbox: () => bullmqInbox({ connection, queueName: `flow-${randomUUID()}` }) })
}
