import t from 'tap'
import { randomUUID } from 'node:crypto'
import { bullmqInbox } from '../../src/bullmq/inbox.js'
import { redisForTests } from '../helpers/redis.js'
import { ensureBuilt } from './helpers.js'
import { operatorFlow } from './inbox-flow.js'

ensureBuilt()

t.test('Redis (BullMQ): lists, shows, re-drives and purges a dead letter', async (t) => {
  const redis = await redisForTests(t)
  if (redis.url === undefined) {
    t.comment(`skipped, needs Redis: ${redis.reason}`)
    return
  }
  const queueName = `cli-${randomUUID()}`
  await operatorFlow(t, ['--store', redis.url, '--queue', queueName], bullmqInbox({ connection: redis.connection, queueName }))
})
