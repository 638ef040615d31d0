// The BullMQ accept writes its job's add and its seen-mark together (src/bullmq/accept.ts):
// the mark runs right after the add in Redis. Should a BullMQ version write the add
// later than the call, the mark runs first, finds no job, and is asked again.
import { randomUUID } from 'node:crypto'
import { Job, Queue } from 'bullmq'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { acceptInto, type AcceptStep } from '../src/bullmq/accept.js'
import { BacklogCount } from '../src/bullmq/backlog-count.js'
import { jobIdFor, markSeenOn, type JobData } from '../src/bullmq/jobs.js'
import type { AnyEvent } from '../src/core/events.js'
import type { InboxRuntime } from '../src/core/inbox.js'
import { redisForTests } from './helpers/redis.js'
import { event } from './inbox-contract/support.js'

const redis = await redisForTests(t)
if (redis.url === undefined) {
  t.test(`accept order skipped: no Redis (${redis.reason})`, async () => {})
} else {
  const { connection, url } = redis

  /** An accept's step on a fresh queue, with `JobClass` adding its jobs; the queue goes when the test ends. */
  const stepWith = (t: Test, JobClass: typeof Job, deadlineAt = performance.now() + 2_000): AcceptStep => {
    const queue = new Queue<JobData>(`accept-order-${randomUUID()}`, { connection, skipMetasUpdate: true })
    t.teardown(async () => { await queue.obliterate({ force: true }); await queue.close() })
    const warnings: unknown[] = []
    const runtime = { options: { retry: { attempts: 3 } }, logger: { warn: (...args: unknown[]) => warnings.push(args) } } as unknown as InboxRuntime
    return { queue, Job: JobClass, deadlineAt, runtime, seenKey: (jobId) => queue.toKey(`seen:${jobId}`), dedupeSeconds: 600, retentionSeconds: 600, deadLetterSeconds: undefined, limit: 1_000, backlog: new BacklogCount(queue) }
  }

  const accept = async (step: AcceptStep, id: string): Promise<string> =>
    await acceptInto(step, event(id) as unknown as AnyEvent, Date.now(), Buffer.from(JSON.stringify(event(id))), { aborted: false })

  t.test('the add and the mark of one accept: accepted, the key set, the job ready to run', async (t) => {
    const step = stepWith(t, Job)
    t.equal(await accept(step, 'evt_order_plain'), 'accepted')
    const client = await step.queue.client
    t.ok(await client.get(step.seenKey(jobIdFor('evt_order_plain'))), 'the key is set')
    const state = async (): Promise<string> => await step.queue.getJobState(jobIdFor('evt_order_plain'))
    for (let tries = 0; tries < 50 && await state() !== 'waiting'; tries++) await new Promise((resolve) => setTimeout(resolve, 20))
    t.equal(await state(), 'waiting', 'ready, not held')
    t.equal(await accept(step, 'evt_order_plain'), 'duplicate', 'a second delivery is a duplicate')
  })

  t.test('an add written after its mark: the mark finds no job and is asked again', async (t) => {
    let lateAdds = 0
    class LateJob extends Job {
      override async addJob (...args: Parameters<Job['addJob']>): Promise<string> {
        lateAdds++
        await new Promise((resolve) => setImmediate(resolve))
        return await super.addJob(...args)
      }
    }
    const step = stepWith(t, LateJob as typeof Job)
    t.equal(await accept(step, 'evt_order_late'), 'accepted', 'accepted all the same')
    t.equal(lateAdds, 1)
    t.ok(await (await step.queue.client).get(step.seenKey(jobIdFor('evt_order_late'))), 'the key is set')
    t.ok(await step.queue.getJob(jobIdFor('evt_order_late')), 'the job exists')
  })

  t.test('the dedupe reads of one turn go as one call, and so do the marks, each accept getting its own answer', async (t) => {
    const step = stepWith(t, Job)
    const client = await step.queue.client
    // Two of the five were seen before, with the body digest an accept stores.
    await acceptInto(step, event('evt_turn_seen1') as unknown as AnyEvent, Date.now(), Buffer.from(JSON.stringify(event('evt_turn_seen1'))), { aborted: false })
    await client.set(step.seenKey(jobIdFor('evt_turn_seen2')), '1')
    const reads: number[] = []
    const marks: number[] = []
    const runCommand = client.runCommand.bind(client)
    client.runCommand = ((name: string, args: unknown[]) => {
      if (name === 'sirWebhooksSeenAndTime') reads.push(Number(args[0]))
      if (name === 'sirWebhooksMarkSeenIfQueued') marks.push(Number(args[0]) / 6)
      return runCommand(name, args)
    }) as typeof client.runCommand
    t.teardown(() => { client.runCommand = runCommand })
    const ids = ['evt_turn_a', 'evt_turn_seen1', 'evt_turn_b', 'evt_turn_seen2', 'evt_turn_c']
    const answers = await Promise.all(ids.map(async (id) => await accept(step, id)))
    t.same(answers, ['accepted', 'duplicate', 'accepted', 'duplicate', 'accepted'])
    t.same(reads, [5], 'one call read the five keys')
    t.same(marks, [3], 'one call marked the three new ones')
    for (const id of ['evt_turn_a', 'evt_turn_b', 'evt_turn_c']) t.ok(await client.get(step.seenKey(jobIdFor(id))), `${id} is marked`)
  })

  t.test('a read or a mark that fails in Redis fails its own accept only; the others of its turn stand', async (t) => {
    const step = stepWith(t, Job)
    const admin = new Redis(url)
    t.teardown(() => admin.disconnect())
    // A seen key of the wrong type: reading or marking it fails (WRONGTYPE).
    const brokenKey = step.seenKey(jobIdFor('evt_fail_b'))
    await admin.hset(brokenKey, 'x', '1')
    const results = await Promise.allSettled(['evt_fail_a', 'evt_fail_b', 'evt_fail_c'].map(async (id) => await accept(step, id)))
    t.same(results.map((result) => result.status === 'fulfilled' ? result.value : 'failed'), ['accepted', 'failed', 'accepted'])
    t.match(results[1], { reason: { message: /WRONGTYPE/ } }, 'the broken read failed its own accept')
    // Two marks of one turn, the second on the broken key (as if it broke between read and mark).
    const queue = step.queue
    await queue.add('action.completed', { receivedAt: 1 }, { jobId: jobIdFor('evt_fail_d') })
    await queue.add('action.completed', { receivedAt: 1 }, { jobId: jobIdFor('evt_fail_b') })
    const client = await queue.client
    const mark = (id: string, seenKey: string): Promise<unknown> =>
      markSeenOn(client, queue, { seenKey, jobId: jobIdFor(id), value: '1', seconds: 60 })
    const marks = await Promise.allSettled([mark('evt_fail_d', step.seenKey(jobIdFor('evt_fail_d'))), mark('evt_fail_b', brokenKey)])
    t.same(marks[0], { status: 'fulfilled', value: 'marked' }, 'the sound mark stands')
    t.match(marks[1], { status: 'rejected', reason: { message: /WRONGTYPE/ } }, 'the broken mark failed alone')
  })

  t.test('a mark that runs past the delivery\'s deadline, by Redis\'s clock, marks nothing', async (t) => {
    // Already past: as if Redis had run the mark after the 503 was sent.
    const step = stepWith(t, Job, performance.now() - 1)
    t.equal(await accept(step, 'evt_order_late_mark'), 'unavailable')
    t.equal(await (await step.queue.client).get(step.seenKey(jobIdFor('evt_order_late_mark'))), null, 'no key')
    // Kept, not lost: a worker that takes it finds no key and holds it for a retry (bullmq-inbox.test.ts runs one).
    t.equal(await step.queue.getJobState(jobIdFor('evt_order_late_mark')), 'waiting', 'the job stays, for a retry')
  })
}
