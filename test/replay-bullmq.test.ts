import { randomUUID } from 'node:crypto'
import t from 'tap'
import { bullmqInbox } from '../src/bullmq/inbox.js'
import { redisForTests } from './helpers/redis.js'
import { dryRunScenario, largeReplayScenario, requeueCapScenario, requeueResetsRetryLaterScenario, requeueScenario } from './replay/scenario.js'

t.test('BullMQ: countMatching and requeue by state, type, time and handler', async (t) => {
  const redis = await redisForTests(t)
  if (redis.url === undefined) return t.comment(`skipped, needs Redis: ${redis.reason}`)
  await requeueScenario(t, bullmqInbox({ connection: redis.connection, queueName: `replay-${randomUUID()}` }))
})

t.test('BullMQ: replay({ dryRun: true }) runs the current handlers and leaves the events as they were', async (t) => {
  const redis = await redisForTests(t)
  if (redis.url === undefined) return t.comment(`skipped, needs Redis: ${redis.reason}`)
  await dryRunScenario(t, bullmqInbox({ connection: redis.connection, queueName: `replay-${randomUUID()}` }))
})

t.test('BullMQ: a replay larger than a page replays each event once', async (t) => {
  const redis = await redisForTests(t)
  if (redis.url === undefined) return t.comment(`skipped, needs Redis: ${redis.reason}`)
  await largeReplayScenario(t, bullmqInbox({ connection: redis.connection, queueName: `replay-${randomUUID()}` }))
})

t.test('BullMQ: a requeue of dead events starts the RetryLater bound afresh', async (t) => {
  const redis = await redisForTests(t)
  if (redis.url === undefined) return t.comment(`skipped, needs Redis: ${redis.reason}`)
  await requeueResetsRetryLaterScenario(t, bullmqInbox({ connection: redis.connection, queueName: `replay-${randomUUID()}` }))
})

t.test('BullMQ: requeue({ max }) queues no more than the confirmed count', async (t) => {
  const redis = await redisForTests(t)
  if (redis.url === undefined) return t.comment(`skipped, needs Redis: ${redis.reason}`)
  await requeueCapScenario(t, bullmqInbox({ connection: redis.connection, queueName: `replay-${randomUUID()}` }))
})
