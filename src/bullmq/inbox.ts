import type { Job, Queue, Worker } from 'bullmq'
import { reportFailures, runAttempt } from '../core/attempt.js'
import { backoffDelay } from '../core/backoff.js'
import type { AnyEvent } from '../core/events.js'
import { assertNotStarted, type AcceptOutcome, type Inbox, type InboxRuntime, type PurgeOptions, type PurgeResult } from '../core/inbox.js'
import { defaults } from '../core/options.js'
import { errorSummary, type DeadLetterQuery, type EventOutcome, type OutcomeState } from '../core/outcome.js'
import { AttemptFailed, HOLD_MS, cleanJobs, countJobs, isClientInstance, jobIdFor, loadBullmq, markSeen, toOutcome, type BullMQ, type JobData } from './jobs.js'
import { MIN_DEDUPE_SECONDS, resolveBullmqOptions, type BullmqInboxOptions, type ResolvedBullmqOptions } from './options.js'
import { purgeCutoffs } from '../core/retention.js'
import { settlesWithin, withDeadline } from '../core/timeouts.js'

export { jobIdFor } from './jobs.js'

export type { BullmqInboxOptions } from './options.js'
export type { PurgeOptions, PurgeResult } from '../core/inbox.js'
export type { DeadLetterQuery, EventOutcome, OutcomeState } from '../core/outcome.js'

/**
 * A durable inbox on BullMQ and Redis, for receivers on several machines. Dedupe
 * outlives jobs: a `SET NX` key per event id, kept at least 7 days. The job is
 * added first, held (delayed), under a job id derived from the event id so that
 * adding it twice is a no-op; the key is set second; the job is promoted third. A
 * job runs only once its key is set, so a delivery refused with 503 (the deadline
 * passed before the key was sent) leaves a held job that never runs unless the
 * sender's retry sets the key. No order of failures marks an event seen that was
 * not queued. A 2xx is answered only after Redis acknowledged the key. A crashed
 * worker's jobs are taken back by BullMQ's stalled-job check once their lock expires.
 */
export class BullmqInbox implements Inbox {
  /** Events survive restarts; handlers are told apart by name. */
  readonly durable = true
  readonly #options: ResolvedBullmqOptions
  readonly #ready: Promise<{ bullmq: BullMQ, queue: Queue<JobData> }>
  #bullmq: BullMQ | undefined
  #worker: Worker<JobData> | undefined
  #runtime: InboxRuntime | undefined
  #closing = false
  #lastRedisErrorAt = 0
  #running = 0
  /** Jobs whose final failure this process reported, so the `failed` listener does not report them twice. */
  readonly #reported = new Set<string>()

  constructor (options: BullmqInboxOptions) {
    this.#options = resolveBullmqOptions(options)
    const { connection, queueName, prefix } = this.#options
    this.#ready = loadBullmq().then((bullmq) => {
      // Without the offline queue, a command to a Redis that is down fails at
      // once instead of waiting for a reconnection: the sender gets its 503 now.
      const queueConnection = isClientInstance(connection) ? connection : { ...connection, enableOfflineQueue: false }
      const queue = new bullmq.Queue<JobData>(queueName, { connection: queueConnection, prefix })
      queue.on('error', (error) => { this.#redisError(error) })
      return { bullmq, queue }
    })
    // Reported where it is awaited (start, queries); this only keeps Node quiet.
    this.#ready.catch(() => {})
  }

  async start (runtime: InboxRuntime): Promise<void> {
    assertNotStarted(this.#runtime !== undefined)
    this.#runtime = runtime
    const { bullmq, queue } = await this.#ready
    this.#bullmq = bullmq
    const { retry } = runtime.options
    const options = this.#options
    const worker = new bullmq.Worker<JobData>(options.queueName, async (job, token) => {
      this.#running += 1
      try {
        await this.#process(job, runtime, queue, token)
      } finally {
        this.#running -= 1
      }
    }, {
      connection: options.connection,
      prefix: options.prefix,
      concurrency: runtime.options.concurrency,
      lockDuration: options.lockDurationMs,
      stalledInterval: options.stalledIntervalMs,
      maxStalledCount: options.maxStalledCount,
      // Started below once the receiver has a handler: an accept-only process
      // (a web tier whose handlers run in workers) must not take jobs it cannot run.
      autorun: false,
      settings: {
        backoffStrategy: (attemptsMade: number, _type?: string, error?: Error) =>
          error instanceof AttemptFailed ? error.retryInMs : backoffDelay(attemptsMade, retry)
      }
    })
    worker.on('error', (error) => { this.#redisError(error) })
    worker.on('failed', (job, error) => { void this.#failedElsewhere(job, error, runtime) })
    // Not awaited: with Redis down at boot, the receiver still answers, 503 each
    // delivery within acceptTimeoutMs, and recovers when Redis is back.
    this.#worker = worker
    this.#runWhenHandled(worker, runtime)
  }

  accept (event: AnyEvent, receivedAt: number): Promise<AcceptOutcome> | AcceptOutcome {
    const runtime = this.#runtime
    if (runtime === undefined || this.#worker === undefined || this.#closing) return 'unavailable'
    const abandoned = new AbortController()
    const work = this.#accept(event, receivedAt, runtime, abandoned.signal).catch((error: unknown) => {
      runtime.logger.warn({ err: error, event: { id: event.id, type: event.type } }, 'the BullMQ inbox could not record the event')
      return 'unavailable' as const
    })
    return withDeadline<AcceptOutcome>(work, this.#options.acceptTimeoutMs, () => {
      abandoned.abort()
      return 'unavailable'
    })
  }

  async #accept (event: AnyEvent, receivedAt: number, runtime: InboxRuntime, abandoned: AbortSignal): Promise<AcceptOutcome> {
    const { queue } = await this.#ready
    const client = await queue.client
    const jobId = jobIdFor(event.id)
    const seenKey = this.#seenKey(jobId)
    const [seen, counts] = await Promise.all([
      client.get(seenKey),
      queue.getJobCounts('wait', 'active', 'delayed', 'prioritized', 'paused')
    ])
    if (seen !== null) return 'duplicate'
    const unfinished = Object.values(counts).reduce<number>((sum, count) => sum + Number(count), 0)
    if (unfinished >= runtime.options.maxQueueSize) return 'full'
    // Redis answered too late for this delivery, which already got its 503: add nothing.
    if (abandoned.aborted) return 'unavailable'
    const retentionSeconds = this.#options.retentionSeconds ?? runtime.options.dedupe.ttlSeconds
    const deadSeconds = this.#options.deadLetterRetentionSeconds
    // Held: if this delivery is refused while the add is in flight, the job
    // exists but must not run, since "503 records nothing".
    const job = await queue.add(event.type, { event, receivedAt }, {
      jobId,
      delay: HOLD_MS,
      attempts: runtime.options.retry.attempts,
      backoff: { type: 'sir-webhooks' },
      removeOnComplete: { age: retentionSeconds },
      removeOnFail: deadSeconds === undefined ? false : { age: deadSeconds }
    })
    // Too late for this answer: the sender gets a 503 and retries; the held job
    // stays held until a retry sets the key. Nothing is marked seen here.
    if (abandoned.aborted) return 'unavailable'
    const set: unknown = await markSeen(client, seenKey, receivedAt, this.#dedupeSeconds(runtime))
    if (set !== 'OK') return 'duplicate'
    // The key is set, so the event must run even if this answer is now late
    // (another delivery of the id may already have been told "duplicate").
    await job.promote().catch(() => {
      // Not held (added by an older version, or running or done already), or
      // Redis failed: then the hold runs out and the job runs, its key being set.
    })
    return 'accepted'
  }

  #dedupeSeconds (runtime: InboxRuntime | undefined): number {
    return this.#options.dedupeSeconds ?? Math.max(MIN_DEDUPE_SECONDS, runtime?.options.dedupe.ttlSeconds ?? defaults.dedupe.ttlSeconds)
  }

  /** Jobs this process's worker is running now. */
  get running (): number {
    return this.#running
  }

  /**
   * Jobs by state. `pending` includes held jobs, a refused delivery's included,
   * until the sender's retry or their hold runs out.
   */
  async counts (): Promise<Record<OutcomeState, number>> {
    return await countJobs((await this.#ready).queue)
  }

  async outcome (id: string): Promise<EventOutcome | undefined> {
    const { queue } = await this.#ready
    const job = await queue.getJob(jobIdFor(id))
    if (job === undefined) return undefined
    const state = await job.getState()
    // A held job nobody set the key for is a refused delivery: not recorded.
    if (state === 'delayed' && job.attemptsMade === 0 && await (await queue.client).get(this.#seenKey(job.id ?? '')) === null) return undefined
    return toOutcome(job, state)
  }

  async deadLetters (query: DeadLetterQuery = {}): Promise<EventOutcome[]> {
    const { queue } = await this.#ready
    const jobs = await queue.getJobs(['failed'], 0, (query.limit ?? 100) - 1, true)
    return jobs.filter((job): job is Job<JobData> => job !== undefined).map((job) => toOutcome(job, 'failed'))
  }

  async redrive (id: string): Promise<boolean> {
    const { queue } = await this.#ready
    const job = await queue.getJob(jobIdFor(id))
    if (job === undefined || await job.getState() !== 'failed') return false
    const client = await queue.client
    // BullMQ's stalled counter (the "stc" field) is not reset by retry(): a job
    // dead-lettered for stalling would fail again at its next stall.
    await client.hdel(queue.toKey(job.id ?? ''), 'stc')
    // Its dedupe key may have expired since; the job runs only with one set.
    await markSeen(client, this.#seenKey(job.id ?? ''), job.data.receivedAt, this.#dedupeSeconds(this.#runtime))
    await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true })
    this.#reported.delete(job.id ?? '')
    return true
  }

  /**
   * Removes done jobs older than `retentionSeconds` and dead ones older than
   * `deadLetterRetentionSeconds` now, rather than when BullMQ next gets to it;
   * with `before`, every done and dead job that finished before it. Their ids
   * stay remembered against duplicates for `dedupeSeconds`.
   */
  async purge (options: PurgeOptions = {}): Promise<PurgeResult> {
    const { queue } = await this.#ready
    // BullMQ's clean() counts back from its own Date.now(): so do the cut-offs.
    const now = Date.now()
    return await cleanJobs(queue, now, purgeCutoffs(now, options, this.#options, this.#runtime?.options), options.dryRun === true)
  }

  /**
   * Stops taking jobs and waits up to `graceMs` for running ones. Dead-letters
   * nothing: jobs still running stay in Redis and, once their lock expires, are
   * taken back by another receiver or by this one's next start.
   */
  async close (graceMs: number): Promise<void> {
    if (this.#closing) return
    this.#closing = true
    const worker = this.#worker
    if (worker !== undefined) {
      const finished = await settlesWithin(worker.pause(false), graceMs)
      if (!finished) this.#runtime?.logger.warn({}, 'close() ran out of time; unfinished events stay in Redis for another receiver or the next start')
      await worker.close(!finished)
    }
    const ready = await this.#ready.catch(() => undefined)
    await ready?.queue.close()
  }

  /** Runs the worker now if the receiver has handlers, else as soon as it has (checked each second). */
  #runWhenHandled (worker: Worker<JobData>, runtime: InboxRuntime): void {
    const run = (): boolean => {
      if (!runtime.hasHandlers || this.#closing) return false
      worker.run().catch((error: unknown) => { this.#redisError(error as Error) })
      return true
    }
    if (run()) return
    runtime.logger.info({}, 'no handlers registered: this process accepts deliveries and leaves running them to processes that have handlers')
    const check = setInterval(() => { if (run() || this.#closing) clearInterval(check) }, 1000)
    check.unref()
  }

  #seenKey (jobId: string): string {
    return `${this.#options.prefix}:${this.#options.queueName}:sir-seen:${jobId}`
  }

  async #process (job: Job<JobData>, runtime: InboxRuntime, queue: Queue<JobData>, token: string | undefined): Promise<void> {
    const { event, receivedAt, succeeded = [] } = job.data
    if (job.attemptsMade === 0 && await (await queue.client).get(this.#seenKey(job.id ?? '')) === null) {
      // A held job whose hold ran out with no key: its delivery was refused or
      // never answered. It waits for the sender's retry to set the key.
      await this.#putBack(job, token, HOLD_MS)
    }
    // attemptsStarted counts an attempt cut short by a crash; attemptsMade does not.
    const attempt = Math.max(job.attemptsStarted, job.attemptsMade + 1)
    const result = await runAttempt(runtime, event, receivedAt, attempt, succeeded)
    // Shutdown cut this attempt short: a handler that returned since may have
    // stopped half-way, so nothing of it is recorded. The job goes back to be run
    // at once by another receiver or the next start; the attempt counts as started.
    if (runtime.signal.aborted) await this.#putBack(job, token, 0)
    const last = result.failures.at(-1)
    if (last === undefined) return
    const message = `${last.key}: ${errorSummary(last.error)}`
    const final = job.attemptsMade + 1 >= (job.opts.attempts ?? 1)
    await job.updateData({ event, receivedAt, succeeded: result.succeeded })
    if (final) {
      this.#reported.add(job.id ?? '')
      await reportFailures(runtime, event, receivedAt, attempt, result.failures, undefined)
      throw new AttemptFailed(message, 0)
    }
    const delay = backoffDelay(job.attemptsMade + 1, runtime.options.retry)
    await reportFailures(runtime, event, receivedAt, attempt, result.failures, delay)
    throw new AttemptFailed(message, delay)
  }

  /** Moves the running job back to delayed without counting an attempt made; always throws, as BullMQ requires. */
  async #putBack (job: Job<JobData>, token: string | undefined, delayMs: number): Promise<never> {
    await job.moveToDelayed(Date.now() + delayMs, token)
    throw new (this.#bullmq as BullMQ).DelayedError()
  }

  /** A job that failed for good without this process's handlers saying so: recovered from crashes too often. */
  async #failedElsewhere (job: Job<JobData> | undefined, error: Error, runtime: InboxRuntime): Promise<void> {
    if (job === undefined || (job.attemptsMade < (job.opts.attempts ?? 1) && !/stalled/i.test(error.message))) return
    const id = job.id ?? ''
    if (this.#reported.delete(id)) return
    if (error instanceof AttemptFailed) return
    await runtime.deadLetter({
      event: job.data.event,
      reason: 'handler_failed',
      error,
      attempts: job.attemptsStarted,
      receivedAt: new Date(job.data.receivedAt)
    })
  }

  /** Redis errors repeat on every reconnection attempt; one line every ten seconds says enough. */
  #redisError (error: Error): void {
    const now = Date.now()
    if (now - this.#lastRedisErrorAt < 10_000) return
    this.#lastRedisErrorAt = now
    this.#runtime?.logger.error({ err: error }, 'the BullMQ inbox lost Redis; deliveries get 503 until it is back')
  }
}

/** A durable inbox on BullMQ and Redis, for receivers on several machines. */
export function bullmqInbox (options: BullmqInboxOptions): BullmqInbox {
  return new BullmqInbox(options)
}
