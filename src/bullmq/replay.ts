// Replay by filter on the BullMQ inbox: the done (completed) or dead (failed)
// jobs that match, counted, queued again, or run dry, a page of jobs at a time.
import type { Job, Queue } from 'bullmq'
import { keyedHandlers } from '../core/attempt.js'
import type { RegisteredHandler } from '../core/handlers.js'
import type { InboxRuntime } from '../core/inbox.js'
import { checkReplayFilter, type CheckedReplayFilter, type ReplayFilter } from '../core/replay-filter.js'
import { dryRunEvent, type ReplayRun } from '../core/replay.js'
import { bodyDigest, seenValue } from './accept.js'
import { jobEvent, jobIdFor, markSeen, type JobData } from './jobs.js'

/**
 * Jobs read per round trip. Redis has no index on a job's type or time, so a
 * filter reads every job of the set once, this many at a time: memory stays
 * bounded by the page, not by the set.
 */
export const PAGE = 500

export interface ReplayEnvironment {
  queue (): Promise<Queue<JobData>>
  seenKey (jobId: string): string
  dedupeSeconds (): number
  /** A job this process had reported dead is queued again. */
  requeued (jobId: string): void
}

const setOf = { dead: 'failed', done: 'completed' } as const

/**
 * A job's match. `handler` reads the job's `succeeded` keys for dead jobs:
 * those this handler did not finish. A done job's handlers all succeeded, but
 * the job does not list them (see `replayOnly`): `handler` does not narrow
 * done jobs, `type` does.
 */
function matches (job: Job<JobData>, filter: CheckedReplayFilter): boolean {
  const { receivedAt, succeeded = [] } = job.data
  if (filter.type !== undefined && job.name !== filter.type) return false
  if (filter.since !== undefined && receivedAt < filter.since) return false
  if (filter.until !== undefined && receivedAt >= filter.until) return false
  if (filter.handler !== undefined && filter.state === 'dead' && succeeded.includes(filter.handler)) return false
  return true
}

/** The handler keys a job's next attempt skips: those that succeeded, and with `replayOnly`, every other one. */
export function handledBefore (data: JobData, handlers: readonly RegisteredHandler[]): string[] {
  const succeeded = data.succeeded ?? []
  if (data.replayOnly === undefined) return succeeded
  const only = new Set(data.replayOnly)
  return [...new Set([...succeeded, ...keyedHandlers(handlers).map(({ key }) => key).filter((key) => !only.has(key))])]
}

/**
 * Calls `visit` with each page's matching jobs, oldest finished first. `visit`
 * answers how many it moved out of the set, so the next page starts where the
 * jobs it has not seen now are; it answers false to stop. Only jobs that had
 * finished when the scan began are visited, and no more of them than the set
 * held then: a replayed job that finishes again meanwhile joins the set anew,
 * and must not be replayed again by the same call (even from a worker whose
 * clock is behind, which scores it earlier).
 */
async function eachPage (queue: Queue<JobData>, filter: CheckedReplayFilter, visit: (jobs: Array<Job<JobData>>) => Promise<number | false>): Promise<void> {
  const set = setOf[filter.state]
  const startedAt = Date.now()
  let left = (await queue.getJobCounts(set))[set] ?? 0
  let start = 0
  while (left > 0) {
    const page = (await queue.getJobs([set], start, start + Math.min(PAGE, left) - 1, true)).filter((job): job is Job<JobData> => job !== undefined)
    if (page.length === 0) return
    left -= page.length
    const before = page.filter((job) => (job.finishedOn ?? 0) <= startedAt)
    const moved = await visit(before.filter((job) => matches(job, filter)))
    if (moved === false || before.length < page.length) return
    start += page.length - moved
  }
}

export async function countMatching (env: ReplayEnvironment, filter: ReplayFilter): Promise<number> {
  const checked = checkReplayFilter(filter, 'countMatching(filter)')
  let count = 0
  await eachPage(await env.queue(), checked, async (jobs) => { count += jobs.length; return 0 })
  return count
}

/**
 * Queues one finished job again with its attempts reset, as a redrive does:
 * the stalled counter cleared, its dedupe key set again (a job runs only with
 * one), its flow record dropped; for a done job, its "handled" marks cleared
 * (only `handler`'s when given). False when someone else moved it first.
 */
export async function requeueJob (env: ReplayEnvironment, queue: Queue<JobData>, job: Job<JobData>, state: 'dead' | 'done', handler?: string): Promise<boolean> {
  const client = await queue.client
  const jobId = job.id ?? ''
  // BullMQ's stalled counter (the "stc" field) is not reset by retry(): a job
  // dead-lettered for stalling would fail again at its next stall.
  await client.hdel(queue.toKey(jobId), 'stc')
  // Its dedupe key may have expired since; the job runs only with one set.
  const digest = typeof job.data.body === 'string' ? bodyDigest(job.data.body) : undefined
  await markSeen(queue, { seenKey: env.seenKey(jobId), jobId, value: seenValue(job.data.receivedAt, digest), seconds: env.dedupeSeconds(), redrive: true })
  // Attempts start afresh, so do the RetryLater bound, the deferral count and
  // the takes that found no key (and a reserved token is long stale).
  const { deferrals: _deferrals, reserved: _reserved, deferredRuns: _deferredRuns, keyWaits: _keyWaits, ...fresh } = job.data
  if (state === 'done') {
    // A completed job's `succeeded` may miss the handlers of its last attempt: cleared, and `replayOnly` says what runs.
    fresh.succeeded = []
    if (handler === undefined) delete fresh.replayOnly
    else fresh.replayOnly = [handler]
  }
  await job.updateData(fresh)
  try {
    await job.retry(setOf[state], { resetAttemptsMade: true, resetAttemptsStarted: true })
  } catch (error) {
    // Moved by someone else between the state read and the retry: done, by them.
    if (error instanceof Error && /is not in the (failed|completed) state/.test(error.message)) return false
    throw error
  }
  env.requeued(jobId)
  return true
}

export async function requeue (env: ReplayEnvironment, filter: ReplayFilter, max = Infinity): Promise<number> {
  const checked = checkReplayFilter(filter, 'requeue(filter)')
  const queue = await env.queue()
  let queued = 0
  await eachPage(queue, checked, async (jobs) => {
    let moved = 0
    for (const job of jobs) {
      if (queued + moved >= max) break
      if (await requeueJob(env, queue, job, checked.state, checked.handler)) moved++
    }
    queued += moved
    return queued >= max ? false : moved
  })
  return queued
}

/**
 * Runs the current handlers on at most `limit` matching jobs, oldest finished
 * first, and writes nothing to Redis: the jobs stay where they are. Handlers'
 * outside effects are theirs to skip (`context.replay.dryRun`).
 */
export async function replayDryRun (env: ReplayEnvironment, runtime: InboxRuntime | undefined, filter: ReplayFilter, limit: number): Promise<ReplayRun[]> {
  if (runtime === undefined) throw new Error('sir-webhooks: replay() needs the BullMQ inbox started by its receiver')
  const checked = checkReplayFilter(filter, 'replay(filter)')
  const runs: ReplayRun[] = []
  let left = limit
  await eachPage(await env.queue(), checked, async (jobs) => {
    for (const job of jobs.slice(0, left)) {
      const event = jobEvent(job.data)
      if (event === undefined) {
        runs.push({ id: job.id ?? '', handler: '', outcome: 'failed', error: 'the job holds a body that is not an event' })
      } else {
        runs.push(...await dryRunEvent(runtime, { event, receivedAt: job.data.receivedAt, succeeded: handledBefore(job.data, runtime.handlersFor(event.type)) }, checked))
      }
      left--
    }
    return left > 0 ? 0 : false
  })
  return runs
}

/** Runs a dead event again (`inbox redrive`); false when it is not dead, or another redrive queued it first. */
export async function redriveJob (env: ReplayEnvironment, id: string): Promise<boolean> {
  const queue = await env.queue()
  const job = await queue.getJob(jobIdFor(id))
  if (job === undefined || await job.getState() !== 'failed') return false
  return await requeueJob(env, queue, job, 'dead')
}
