// The pending index loses a job's entry once BullMQ has finished it (src/bullmq/pending.ts):
// the jobs finished in one turn of the event loop share one call to Redis.
import { randomUUID } from 'node:crypto'
import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import t from 'tap'
import { pendingKey, type JobData } from '../src/bullmq/jobs.js'
import { jobFinished } from '../src/bullmq/pending.js'
import { redisForTests } from './helpers/redis.js'

const redis = await redisForTests(t)
if (redis.url === undefined) {
  t.test(`pending index skipped: no Redis (${redis.reason})`, async () => {})
} else {
  const { connection, url } = redis
  const admin = new Redis(url)
  t.teardown(() => admin.disconnect())

  t.test('the jobs finished in one turn leave the index in one call; an unfinished one stays', async (t) => {
    const queue = new Queue<JobData>(`pending-${randomUUID()}`, { connection })
    t.teardown(async () => { await queue.obliterate({ force: true }); await queue.close() })
    const client = await queue.client
    // Three jobs BullMQ completed (gone, as removeOnComplete leaves them) and one still waiting.
    const waiting = await queue.add('action.completed', { receivedAt: 4 }, { jobId: 'ewaiting' })
    await admin.zadd(pendingKey(queue), 1, 'edone1', 2, 'edone2', 3, 'edone3', 4, waiting.id ?? '')
    const calls: unknown[] = []
    const runCommand = client.runCommand.bind(client)
    client.runCommand = (async (...args: Parameters<typeof runCommand>) => {
      if (args[0] === 'sirWebhooksPendingFinished') calls.push(args[1])
      return await runCommand(...args)
    }) as typeof client.runCommand
    t.teardown(() => { client.runCommand = runCommand })

    await Promise.all(['edone1', 'edone2', 'edone3', waiting.id ?? ''].map(async (id) => { await jobFinished(queue, id) }))
    t.equal(calls.length, 1, 'four finishes, one call')
    t.same(await admin.zrange(pendingKey(queue), 0, -1), ['ewaiting'], 'the finished ones are gone; the waiting job, back for a retry, stays')

    await waiting.remove()
    await jobFinished(queue, 'ewaiting')
    t.equal(calls.length, 2, 'a finish in a later turn makes its own call')
    t.same(await admin.zrange(pendingKey(queue), 0, -1), [], 'and its entry goes once its job is gone')
  })
}
