// Running the BullMQ inbox's jobs: the BullMQ worker, one attempt of a job's handlers,
// putting a job back, and reporting jobs that died without this process's handlers saying so.
import type { Job, Queue, RedisClient, Worker } from 'bullmq'
import { reportFailures, runAttempt, type AttemptResult } from '../core/attempt.js'
import { earliestRetry, runFlowAttempt, type DeferredRun, type FlowAttemptResult } from '../core/flow/attempt.js'
import { backoffDelay } from '../core/backoff.js'
import type { AllowanceGate } from '../core/allowance-gate.js'
import type { InboxRuntime } from '../core/inbox.js'
import { errorSummary } from '../core/outcome.js'
import { coalesceWrites } from './coalesce-writes.js'
import { AttemptFailed, HOLD_MS, attemptsStarted, jobEvent, seenAndTime, type BullMQ, type JobData } from './jobs.js'
import type { ResolvedBullmqOptions } from './options.js'
import { acceptedUnrun, jobFinished } from './pending.js'
import { withAttempts } from './attempt-log.js'
import { handledBefore } from './replay.js'
import { endFailedTurn, endTurn, recordTurn, takeKey } from './ordering-run.js'
import type { RedisOrderingStore } from './ordering-store.js'

export interface JobRunner {
  bullmq: BullMQ
  queue: Queue<JobData>
  runtime: InboxRuntime
  options: ResolvedBullmqOptions
  /** The dedupe key of a job id. */
  seenKey: (jobId: string) => string
  /** Redis or BullMQ said something went wrong. */
  onError: (error: Error) => void
  /** Jobs running in this process now, kept up to date here. */
  running: { count: number }
  /** Jobs whose final failure this process reported, so the `failed` listener does not report them twice. */
  reported: Set<string>
  /** Where a job put back for want of a handler's slot waits to be woken. */
  flow: { waitForSlot: (handler: string, jobId: string, receivedAt: number) => Promise<void> }
  /** With the receiver's `ordering` option: the keys' lines in Redis. */
  ordering?: RedisOrderingStore | undefined
  /** Holds each job's run to the handler slots accepts leave (core/allowance-gate.ts). */
  gate: AllowanceGate
  /** close() has begun: its Redis connections may end under a read in flight. */
  closing: () => boolean
}

/**
 * How long a job put back for want of a handler's slot waits at most: a release
 * wakes it sooner (flow-slots.ts); this is for a slot that frees by its lease
 * ending, and it is ten times fewer put-backs than asking every 100 ms.
 */
export const SLOT_WAIT_MS = 1_000

/** The inbox's BullMQ worker, not yet running (see `runWhenHandled`). */
export function createWorker (runner: JobRunner): Worker<JobData> {
  const { bullmq, options, runtime } = runner
  const { retry } = runtime.options
  // The worker's own connection, once open: what BullMQ finishes each job on.
  let workerClient: RedisClient | undefined
  const worker = new bullmq.Worker<JobData>(options.queueName, async (job, token) => {
    // Closing while it waited for a slot: back to the queue, no attempt counted, no handler started.
    if (!(await runner.gate.enter())) await putBack(runner, job, token, 0)
    runner.running.count += 1
    try {
      await processJob(runner, job, token)
    } finally {
      runner.running.count -= 1
      runner.gate.leave()
      // BullMQ writes the job's finish (moveToFinished) right after this
      // returns, in this turn: the finishes of one turn leave in one write, not
      // a system call each (coalesce-writes.ts).
      if (workerClient !== undefined) coalesceWrites(workerClient)
    }
  }, {
    connection: options.connection,
    prefix: options.prefix,
    concurrency: runtime.options.concurrency,
    lockDuration: options.lockDurationMs,
    stalledInterval: options.stalledIntervalMs,
    maxStalledCount: options.maxStalledCount,
    // Started once the receiver has a handler: an accept-only process (a web
    // tier whose handlers run in workers) must not take jobs it cannot run.
    autorun: false,
    settings: {
      backoffStrategy: (attemptsMade: number, _type?: string, error?: Error) =>
        error instanceof AttemptFailed ? error.retryInMs : backoffDelay(attemptsMade, retry)
    }
  })
  worker.client.then((client) => { workerClient = client }, () => {})
  worker.on('error', (error) => { runner.onError(error) })
  worker.on('failed', (job, error) => {
    void failedElsewhere(runner, job, error)
    if (job?.id !== undefined) jobFinished(runner.queue, job.id).catch(runner.onError)
  })
  worker.on('completed', (job) => {
    if (job.id !== undefined) jobFinished(runner.queue, job.id).catch(runner.onError)
  })
  return worker
}

/** Runs the worker now if the receiver has handlers, else as soon as it has (checked each second). */
export function runWhenHandled (worker: Worker<JobData>, runner: JobRunner): void {
  const run = (): boolean => {
    if (!runner.runtime.hasHandlers || runner.closing()) return false
    worker.run().catch((error: unknown) => { runner.onError(error as Error) })
    return true
  }
  if (run()) return
  runner.runtime.logger.info({}, 'no handlers registered: this process accepts deliveries and leaves running them to processes that have handlers')
  const check = setInterval(() => { if (run() || runner.closing()) clearInterval(check) }, 1000)
  check.unref()
}

/**
 * Whether the id's key is set, read again over most of a second while it is not.
 * An accept writes a new job and its key's mark together, the add first: a
 * worker can take the job between the two. Earlier versions promoted a held
 * job right behind the mark, and a mark that Redis answered NOSCRIPT (scripts
 * flushed by a restart) or a cluster redirect was sent again after the
 * promotion ran; and a hold can run out as a retry's mark is on its way. A job
 * put back for want of its key waits HOLD_MS, unless a retry's mark promotes it.
 */
async function keySetSoon (runner: JobRunner, jobId: string, pauses: readonly number[] = [0, 100, 250, 500]): Promise<boolean> {
  const client = await runner.queue.client
  for (const pauseMs of pauses) {
    if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs))
    // With the accepts' dedupe reads of this turn: one script call for them all.
    if ((await seenAndTime(client, runner.queue.toKey(''), runner.seenKey(jobId))).seen !== null) return true
  }
  return false
}

async function processJob (runner: JobRunner, job: Job<JobData>, token: string | undefined): Promise<void> {
  const { runtime } = runner
  const { receivedAt, deferredRuns = 0 } = job.data
  const event = jobEvent(job.data)
  if (event === undefined) {
    // Only a body edited in Redis since the accept parsed it: no retry can help.
    runtime.logger.error({ job: { id: job.id } }, 'a BullMQ job holds a body that is not an event (edited in Redis?); it is failed without running')
    throw new runner.bullmq.UnrecoverableError('the job holds a body that is not an event')
  }
  const succeeded = handledBefore(job.data, runtime.handlersFor(event.type))
  // A job deferred before was run, so its delivery was answered: its key may
  // have expired since (dedupeSeconds) with no attempt made, yet it is no hold.
  // A job already put back for want of its key is read once: a retry's mark promotes it.
  const keyWaits = job.data.keyWaits ?? 0
  // Marked once, and its key expired since while no worker took it: it runs too.
  if (job.attemptsMade === 0 && deferredRuns === 0 &&
    !await acceptedUnrun(runner.queue, job.id ?? '', receivedAt, async () => await keySetSoon(runner, job.id ?? '', keyWaits > 0 ? [0] : undefined))) {
    // No key: its delivery was refused or never answered. Held, it waits for
    // the sender's retry to set the key. The take was not an attempt.
    await job.updateData({ ...job.data, keyWaits: keyWaits + 1 })
    // A mark that ran between the last read and the put-back found the job
    // active, so its accept did not promote it: read once more, and end the
    // hold if the key is there. Not awaited (a promotion may start a new run of
    // this job here; ordering-run.ts parks the same way). A failed read is
    // Redis's to report; a failed promotion is a job no longer held (a retry's
    // accept promoted it first), as in accept.ts.
    await putBack(runner, job, token, HOLD_MS, () => {
      keySetSoon(runner, job.id ?? '', [0]).then(async (set) => {
        if (set) await job.promote().catch(() => {})
      }, (error: unknown) => {
        // A close racing the put-back is not Redis lost.
        if (!runner.closing()) runner.onError(error as Error)
      })
    })
  }
  // The key first: a job that may not take it is parked, no attempt used.
  const turn = await takeKey(runner.bullmq, runtime, runner.ordering, job, event, token)
  if (turn !== undefined) await recordTurn(job, turn)
  if (turn?.skip === true) {
    // Stale under skipStale: done unrun, its outcome `stale` (recorded just above).
    await endTurn(runtime, turn, 'stale')
    return
  }
  // attemptsStarted counts an attempt cut short by a crash; attemptsMade does not.
  // Each pick-up of a deferred job, or of one whose key was not set, counts as
  // started too, but used no attempt.
  const attempt = Math.max(attemptsStarted(job) - (job.data.deferredRuns ?? 0), job.attemptsMade + 1)
  const flow = runtime.flow
  const result: AttemptResult & Partial<FlowAttemptResult> = flow === undefined
    ? await runAttempt(runtime, event, receivedAt, attempt, succeeded, turn?.context)
    : await runFlowAttempt(runtime, flow, { event, receivedAt, attempt, ordering: turn?.context }, succeeded, job.data)
  // Shutdown cut this attempt short: a handler that returned since may have
  // stopped half-way, so nothing of it is recorded. The job goes back to be run
  // at once by another receiver or the next start; the attempt counts as started.
  if (runtime.signal.aborted) await putBack(runner, job, token, 0)
  const last = result.failures.at(-1)
  const attemptLog = last === undefined && (result.deferred ?? []).length === 0
    ? job.data.attemptLog
    : withAttempts(job.data.attemptLog, attempt, result.failures, result.deferred ?? [], Date.now())
  if (last === undefined && (result.deferred ?? []).length > 0) {
    // Nothing failed, something may not run yet: back to wait, no attempt used.
    await job.updateData({ ...job.data, succeeded: result.succeeded, deferrals: result.deferrals, reserved: result.reserved, deferredRuns: (job.data.deferredRuns ?? 0) + 1, attemptLog })
    const deferred = (result.deferred ?? []).map((run) => run.reason === 'concurrency' ? { ...run, retryInMs: Math.max(run.retryInMs, SLOT_WAIT_MS) } : run)
    await job.moveToDelayed(Date.now() + earliestRetry(deferred), token)
    // Once delayed, so that a release finds it there to wake. Not awaited: a
    // release may wake the job into a new run in this worker meanwhile, and BullMQ
    // stops renewing a job's lock (by id) when any run of it ends, so this run
    // ends now rather than after the new one has started (ordering-run.ts parks
    // the same way).
    const slots = deferred.filter((run) => run.reason === 'concurrency').map((run) => run.handler)
    void Promise.all([...new Set(slots)].map(async (handler) => { await runner.flow.waitForSlot(handler, job.id ?? '', receivedAt) })).catch(runner.onError)
    throw new runner.bullmq.DelayedError()
  }
  if (last === undefined) {
    await endTurn(runtime, turn, 'handled')
    return
  }
  const final = job.attemptsMade + 1 >= (job.opts.attempts ?? 1)
  const message = `${last.key}: ${errorSummary(last.error)}` + (final ? notRun(runner, job, result.deferred ?? []) : '')
  await job.updateData({ ...job.data, succeeded: result.succeeded, deferrals: result.deferrals, reserved: result.reserved, attemptLog })
  if (final) {
    runner.reported.add(job.id ?? '')
    await reportFailures(runtime, event, receivedAt, attempt, result.failures, undefined, turn?.context)
    await endTurn(runtime, turn, 'dead')
    throw new AttemptFailed(message, 0)
  }
  const delay = backoffDelay(job.attemptsMade + 1, runtime.options.retry)
  await reportFailures(runtime, event, receivedAt, attempt, result.failures, delay, turn?.context)
  throw new AttemptFailed(message, delay)
}

/**
 * Handlers deferred in the final attempt (paused, rate, concurrency, RetryLater)
 * die with the job though they never ran: the dead record names them, and a
 * redrive runs them, as they are not among the job's `succeeded`.
 */
function notRun (runner: JobRunner, job: Job<JobData>, deferred: readonly DeferredRun[]): string {
  if (deferred.length === 0) return ''
  const keys = deferred.map((run) => run.key)
  runner.runtime.logger.warn({ job: { id: job.id }, handlers: keys },
    'a handler of this event failed for good while others were deferred: they did not run; redrive the dead letter to run them')
  return `; not run: deferred (${deferred.map((run) => `${run.key}: ${run.reason}`).join(', ')})`
}

/** Moves the running job back to delayed without counting an attempt made; always throws, as BullMQ requires. */
async function putBack (runner: JobRunner, job: Job<JobData>, token: string | undefined, delayMs: number, parked?: () => void): Promise<never> {
  await job.moveToDelayed(Date.now() + delayMs, token)
  parked?.()
  throw new runner.bullmq.DelayedError()
}

/** A job that failed for good without this process's handlers saying so: recovered from crashes too often. */
async function failedElsewhere (runner: JobRunner, job: Job<JobData> | undefined, error: Error): Promise<void> {
  if (job === undefined || (job.attemptsMade < (job.opts.attempts ?? 1) && !/stalled/i.test(error.message))) return
  const id = job.id ?? ''
  if (runner.reported.delete(id)) return
  if (error instanceof AttemptFailed) return
  const event = jobEvent(job.data)
  if (event === undefined) return
  try {
    await runner.runtime.deadLetter({
      event,
      reason: 'handler_failed',
      error,
      attempts: attemptsStarted(job),
      receivedAt: new Date(job.data.receivedAt)
    })
  } finally {
    // No turn of ours ended it, so its ordering key was not let go: now (ordering-run.ts).
    await endFailedTurn(runner.runtime, job, event)
  }
}
