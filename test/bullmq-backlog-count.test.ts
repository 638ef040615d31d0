import t from 'tap'
import type { Queue } from 'bullmq'
import { BacklogCount } from '../src/bullmq/backlog-count.js'
import type { JobData } from '../src/bullmq/jobs.js'

// The backlog bound's count of unfinished jobs: counted in Redis near the bound
// and before the first count, estimated from a recent count far from it.

/** A queue whose getJobCounts answers `jobs` (spread over the states) and counts its calls. */
function fakeQueue (jobs: { value: number }): { queue: Queue<JobData>, calls: () => number } {
  let calls = 0
  const queue = {
    async getJobCounts (...states: string[]) {
      calls++
      await new Promise((resolve) => setImmediate(resolve))
      return Object.fromEntries(states.map((state, index) => [state, index === 0 ? jobs.value : 0]))
    }
  } as unknown as Queue<JobData>
  return { queue, calls: () => calls }
}

t.test('far from the bound, a recent count plus this receiver\'s own adds answers without asking Redis', async (t) => {
  const jobs = { value: 10 }
  const { queue, calls } = fakeQueue(jobs)
  const count = new BacklogCount(queue)
  t.equal(await count.unfinished(1000), 10, 'the first accept counts in Redis')
  t.equal(calls(), 1)
  count.added()
  count.added()
  t.equal(await count.unfinished(1000), 12, 'the next ones add their own jobs to that count')
  t.equal(calls(), 1, 'and do not ask Redis')
})

t.test('at half the bound and above, every accept counts in Redis, as each did before', async (t) => {
  const jobs = { value: 499 }
  const { queue, calls } = fakeQueue(jobs)
  const count = new BacklogCount(queue)
  await count.unfinished(1000)
  count.added()
  jobs.value = 998
  t.equal(await count.unfinished(1000), 998, 'at 500 of 1 000 (499 counted, one added): counted afresh, other receivers\' jobs and all')
  t.equal(calls(), 2)
  jobs.value = 999
  t.equal(await count.unfinished(1000), 999)
  t.equal(await count.unfinished(1000), 999)
  t.equal(calls(), 4, 'near the bound, one count per accept')
})

t.test('a small bound (an explicit maxQueueSize of 3) is counted in Redis from the first accept on', async (t) => {
  const jobs = { value: 0 }
  const { queue, calls } = fakeQueue(jobs)
  const count = new BacklogCount(queue)
  const answers = await Promise.all([count.unfinished(3), count.unfinished(3), count.unfinished(3)])
  t.same(answers, [0, 0, 0])
  t.equal(calls(), 3, 'concurrent first accepts each count: none shares a count it did not see')
})

t.test('a count older than 250 ms is taken again, once for the accepts that ask meanwhile', async (t) => {
  const jobs = { value: 10 }
  const { queue, calls } = fakeQueue(jobs)
  const count = new BacklogCount(queue)
  const realNow = Date.now
  let now = realNow()
  Date.now = () => now
  t.teardown(() => { Date.now = realNow })
  await count.unfinished(1000)
  now += 251
  jobs.value = 40
  const answers = await Promise.all([count.unfinished(1000), count.unfinished(1000), count.unfinished(1000)])
  t.same(answers, [40, 40, 40], 'the new count')
  t.equal(calls(), 2, 'one count for the three')
})
