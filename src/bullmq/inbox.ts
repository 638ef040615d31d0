import type { Queue, Worker } from 'bullmq'
import { AcceptPriority } from '../core/accept-priority.js'
import { AllowanceGate } from '../core/allowance-gate.js'
import type { AnyEvent } from '../core/events.js'
import { assertNotStarted, type AcceptOutcome, type EventQuery, type Inbox, type InboxHealth, type InboxRuntime, type PurgeOptions, type PurgeResult } from '../core/inbox.js'
import { WebhookOptionsError } from '../core/errors.js'
import { defaults } from '../core/options.js'
import type { DeadLetterQuery, EventOutcome, OutcomeState } from '../core/outcome.js'
import { purgeCutoffs } from '../core/retention.js'
import { settlesWithin, withDeadline } from '../core/timeouts.js'
import { BacklogCount } from './backlog-count.js'
import { acceptInto } from './accept.js'
import { cleanJobs, countJobs, isClientInstance, loadBullmq, type BullMQ, type JobData } from './jobs.js'
import { MIN_DEDUPE_SECONDS, resolveBullmqOptions, type BullmqInboxOptions, type ResolvedBullmqOptions } from './options.js'
import { RedisState, checkDatabase, forLog } from './redis-state.js'
import { createWorker, runWhenHandled, type JobRunner } from './worker.js'
import { PAUSE_REFRESH_MS, RedisFlowStore } from './flow-store.js'
import { OldestPending } from './pending.js'
import { RedisOrderingStore } from './ordering-store.js'
import type { ResolvedOptions } from '../core/resolved-options.js'
import { listDeadLetters, listEvents, outcomeOf } from './listing.js'
import { RedisMemory } from './memory-floor.js'
import { backlogLimit } from '../core/backlog-bound.js'
import type { FlowStore } from '../core/flow/store.js'
import { countMatching, redriveJob, replayDryRun, requeue, type ReplayEnvironment } from './replay.js'
import type { ReplayFilter, RequeueOptions } from '../core/replay-filter.js'
import type { ReplayRun } from '../core/replay.js'

export { jobIdFor } from './jobs.js'

export type { BullmqInboxOptions } from './options.js'
export type { PurgeOptions, PurgeResult } from '../core/inbox.js'
export type { DeadLetterQuery, EventOutcome, OutcomeState } from '../core/outcome.js'

/**
 * A durable inbox on BullMQ and Redis, for receivers on several machines. Dedupe
 * outlives jobs: a key per event id, kept at least 7 days; a done or dead job
 * that outlives its key answers for the id itself. The job is added first,
 * under a job id derived from the event id so that adding it twice is a no-op;
 * the key is set second, right behind it on the same connection, by a script that sets it only if
 * the job still exists. A job runs only once its key is set: a worker that
 * finds none puts the job back, held, so a delivery refused with 503 (the
 * deadline passed before the key was set) leaves a job that never runs unless
 * the sender's retry sets the key and promotes it, and a mark re-sent by the
 * client after a Redis restart that lost the job marks nothing. No order of
 * failures marks an event seen that was not queued.
 * A 2xx is answered only after Redis acknowledged the key. A crashed worker's
 * jobs are taken back by BullMQ's stalled-job check once their lock expires.
 */
export class BullmqInbox implements Inbox {
  /** Events survive restarts; handlers are told apart by name. */
  readonly durable = true
  readonly #options: ResolvedBullmqOptions
  readonly #ready: Promise<{ queue: Queue<JobData>, backlog: BacklogCount }>
  /** Settles once Redis has said the database it was given exists; redone after a failure that does not say it has not. */
  #database: Promise<void> | undefined
  readonly #redis = new RedisState(() => this.#runtime?.logger)
  #worker: Worker<JobData> | undefined
  #priority: AcceptPriority | undefined
  #gate: AllowanceGate | undefined
  #runtime: InboxRuntime | undefined
  #closing = false
  readonly #running = { count: 0 }
  /** Jobs whose final failure this process reported, so the `failed` listener does not report them twice. */
  readonly #reported = new Set<string>()
  #bullmq: BullMQ | undefined
  readonly #flow: RedisFlowStore
  readonly #oldest = new OldestPending()
  #ordering: RedisOrderingStore | undefined
  readonly #memory = new RedisMemory(async () => await (await (await this.#ready).queue.client).info())

  constructor (options: BullmqInboxOptions) {
    this.#options = resolveBullmqOptions(options)
    const { connection, queueName, prefix } = this.#options
    this.#flow = new RedisFlowStore(async () => await this.#queue(), (name) => `${prefix}:${queueName}:sir-flow:${name}`, (error) => { this.#redis.error(error) },
      { leaseMs: this.#options.lockDurationMs, logger: () => this.#runtime?.logger })
    this.#ready = loadBullmq().then((bullmq) => {
      this.#bullmq = bullmq
      // Without the offline queue, a command to a Redis that is down fails at
      // once instead of waiting for a reconnection: the sender gets its 503 now.
      const queueConnection = isClientInstance(connection) ? connection : { ...connection, enableOfflineQueue: false }
      // No meta write on connecting: an operator's read-only command must write
      // nothing, and the database is not yet known to exist. start() writes it.
      const queue = new bullmq.Queue<JobData>(queueName, { connection: queueConnection, prefix, skipMetasUpdate: true })
      queue.on('error', (error) => { this.#redis.error(error) })
      return { queue, backlog: new BacklogCount(queue) }
    })
    // Reported where it is awaited (start, accepts, queries); this only keeps Node quiet.
    this.#ready.catch(() => {})
    void this.#databaseChecked().catch(() => {})
  }

  /** Redis has the database this inbox was given: checked once, again after a failure that is not Redis saying no. */
  async #databaseChecked (): Promise<void> {
    this.#database ??= this.#ready.then(async ({ queue }) => {
      const client = await queue.client
      this.#redis.watch(client)
      await checkDatabase(client, this.#options.connection)
    }).catch((error: unknown) => {
      if (!(error instanceof WebhookOptionsError)) this.#database = undefined
      throw error
    })
    await this.#database
  }

  /** bullmq imported and the queue made, no Redis round trip; a failure is start()'s and each accept's to report. */
  async loaded (): Promise<void> { await this.#ready.catch(() => {}) }

  async start (runtime: InboxRuntime): Promise<void> {
    assertNotStarted(this.#runtime !== undefined)
    this.#runtime = runtime
    const { queue, backlog } = await this.#ready
    const gate: AllowanceGate = new AllowanceGate(() => priority.allowed)
    const priority = new AcceptPriority(runtime.options.concurrency, { onChange: () => { gate.changed() } })
    const runner: JobRunner = {
      bullmq: this.#bullmq as BullMQ,
      queue,
      runtime,
      options: this.#options,
      seenKey: (jobId) => this.#seenKey(jobId),
      onError: (error) => { this.#redis.error(error) },
      running: this.#running,
      reported: this.#reported,
      flow: this.#flow,
      ordering: this.#ordering,
      gate,
      closing: () => this.#closing
    }
    const worker = createWorker(runner)
    this.#worker = worker
    this.#gate = gate
    this.#priority = priority
    // Not awaited: with Redis down at boot, the receiver still answers, 503 each
    // delivery within acceptTimeoutMs, and runs the worker once Redis is back. A
    // database Redis refuses keeps the worker from ever running.
    const begin = (): void => {
      this.#databaseChecked().then(async () => {
        // Onto a large backlog the handlers start with one slot (core/accept-priority.ts).
        const waiting = await backlog.unfinished(Number.POSITIVE_INFINITY).catch(() => 0)
        if (this.#closing) return
        priority.startingOnto(waiting)
        this.#flow.start()
        this.#ordering?.start()
        this.#oldest.start(async () => await this.#queue(), PAUSE_REFRESH_MS, (error) => { this.#redis.error(error) })
        this.#memory.start()
        runWhenHandled(worker, runner)
        // What BullMQ's Queue writes on connecting, left out there for read-only commands.
        queue.client.then(async (client) => await client.hset(queue.toKey('meta'), queue.metaValues)).catch(() => {})
      }, (error: unknown) => {
        if (this.#closing) return
        if (!(error instanceof WebhookOptionsError)) {
          setTimeout(begin, 1_000).unref()
          return
        }
        this.#redis.refuse(error.message)
        runtime.logger.error({ err: forLog(error) }, 'the BullMQ inbox cannot use the Redis database it was given; deliveries get 503')
      })
    }
    begin()
  }

  accept (event: AnyEvent, receivedAt: number, _whenAnswered?: unknown, _waitUntil?: unknown, rawBody?: Uint8Array): Promise<AcceptOutcome> | AcceptOutcome {
    const runtime = this.#runtime
    if (runtime === undefined || this.#worker === undefined || this.#closing) return 'unavailable'
    // A flag, not an AbortController: one per delivery, and nothing listens.
    const abandoned = { aborted: false }
    const deadlineAt = performance.now() + this.#options.acceptTimeoutMs
    const work = this.#accept(event, receivedAt, runtime, rawBody, { abandoned, deadlineAt }).catch((error: unknown) => {
      // forLog: a Redis error carries the failed command's arguments, the event among them.
      runtime.logger.warn({ err: forLog(error), event: { id: event.id, type: event.type } }, 'the BullMQ inbox could not record the event')
      return 'unavailable' as const
    })
    return withDeadline<AcceptOutcome>(work, this.#options.acceptTimeoutMs, () => {
      abandoned.aborted = true
      return 'unavailable'
    })
  }

  async #accept (event: AnyEvent, receivedAt: number, runtime: InboxRuntime, rawBody: Uint8Array | undefined, { abandoned, deadlineAt }: { abandoned: { readonly aborted: boolean }, deadlineAt: number }): Promise<AcceptOutcome> {
    const calledAt = Date.now()
    const { queue, backlog } = await this.#ready
    await this.#databaseChecked()
    const outcome = await acceptInto({
      queue,
      Job: (this.#bullmq as BullMQ).Job,
      deadlineAt,
      backlog,
      runtime,
      seenKey: (jobId) => this.#seenKey(jobId),
      dedupeSeconds: this.#dedupeSeconds(runtime),
      retentionSeconds: this.#options.retentionSeconds ?? runtime.options.dedupe.ttlSeconds,
      deadLetterSeconds: this.#options.deadLetterRetentionSeconds,
      limit: this.#memory.full ? 0 : backlogLimit(this.#options.maxBacklog, runtime.options)
    }, event, receivedAt, rawBody, abandoned)
    // Fresh accepts only: a duplicate's one round trip would lower the mark that slow is judged by.
    if (outcome === 'accepted') this.#priority?.accepted(Date.now() - calledAt)
    return outcome
  }

  /**
   * Flow control kept in Redis: every receiver on this queue shares each
   * handler's rate, its concurrency (leased slots) and the pause.
   */
  flowStore (): FlowStore {
    return this.#flow
  }

  /** Ordering kept in Redis for every worker on the queue; a key's newest handled createdAt kept for the dedupe window. */
  orderingStore (options: ResolvedOptions): RedisOrderingStore {
    const settings = { ttlMs: () => this.#dedupeSeconds(this.#runtime) * 1000, onDeadLetter: options.ordering?.onDeadLetter ?? 'skip', onError: (error: Error) => { this.#redis.error(error) } }
    return (this.#ordering = new RedisOrderingStore(async () => await this.#queue(), settings))
  }

  /** Whether Redis is reachable: degraded while it is not, as every delivery then gets 503. */
  health (): InboxHealth {
    const own = this.#redis.health()
    const memory = this.#memory.reason()
    return memory === undefined ? own : { status: 'degraded', reasons: [...own.reasons, memory] }
  }

  /** Unfinished jobs before deliveries get 503 (the receiver's `maxQueueSize` too, when set). */
  get maxBacklog (): number { return this.#options.maxBacklog }

  /** The queue, once Redis said the database exists: what the queries run on. */
  async #queue (): Promise<Queue<JobData>> {
    const { queue } = await this.#ready
    await this.#databaseChecked()
    return queue
  }

  #dedupeSeconds (runtime: InboxRuntime | undefined): number {
    return this.#options.dedupeSeconds ?? Math.max(MIN_DEDUPE_SECONDS, runtime?.options.dedupe.ttlSeconds ?? defaults.dedupe.ttlSeconds)
  }

  /**
   * When the oldest event accepted and not finished was received, across every
   * receiver on the queue: from the pending index (pending.ts), read every 500 ms.
   */
  get oldestReceivedAt (): number | undefined { return this.#oldest.value }

  /** Jobs this process's worker is running now. */
  get running (): number { return this.#running.count }

  /**
   * Jobs by state. `pending` includes held jobs, a refused delivery's included,
   * until the sender's retry or their hold runs out.
   */
  async counts (): Promise<Record<OutcomeState, number>> { return await countJobs(await this.#queue()) }

  async outcome (id: string): Promise<EventOutcome | undefined> {
    return await outcomeOf(await this.#queue(), id, (jobId) => this.#seenKey(jobId))
  }

  /** Events by filter, newest received first: a bounded scan of sorted sets (listing.ts says how). */
  async events (query?: EventQuery): Promise<EventOutcome[]> {
    return await listEvents(await this.#queue(), query)
  }

  async deadLetters (query: DeadLetterQuery = {}): Promise<EventOutcome[]> {
    return await listDeadLetters(await this.#queue(), query.limit ?? 100)
  }

  // Replay by filter (replay.ts): the completed or failed set read a page of 500 jobs at a time.
  async countMatching (filter: ReplayFilter): Promise<number> { return await countMatching(this.#replayEnv(), filter) }
  async requeue (filter: ReplayFilter, options?: RequeueOptions): Promise<number> { return await requeue(this.#replayEnv(), filter, options?.max) }
  async replayDryRun (filter: ReplayFilter, limit: number): Promise<ReplayRun[]> { return await replayDryRun(this.#replayEnv(), this.#runtime, filter, limit) }
  #replayEnv (): ReplayEnvironment {
    return { queue: async () => await this.#queue(), seenKey: (jobId) => this.#seenKey(jobId), dedupeSeconds: () => this.#dedupeSeconds(this.#runtime), requeued: (jobId) => { this.#reported.delete(jobId) } }
  }

  /** False also when another redrive (a second operator, say) queued it again first. */
  async redrive (id: string): Promise<boolean> { return await redriveJob(this.#replayEnv(), id) }

  /**
   * Removes done jobs older than `retentionSeconds` and dead ones older than
   * `deadLetterRetentionSeconds` now, rather than when BullMQ next gets to it;
   * with `before`, every done and dead job that finished before it. Their ids
   * stay remembered against duplicates for `dedupeSeconds`.
   */
  async purge (options: PurgeOptions = {}): Promise<PurgeResult> {
    const queue = await this.#queue()
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
    this.#flow.close()
    this.#ordering?.close()
    this.#oldest.stop()
    this.#memory.stop()
    this.#priority?.stop()
    // Jobs waiting for a slot go back to the queue unstarted, for another receiver or the next start.
    this.#gate?.close()
    const worker = this.#worker
    if (worker !== undefined) {
      const finished = await settlesWithin(worker.pause(false), graceMs)
      if (!finished) this.#runtime?.logger.warn({}, 'close() ran out of time; unfinished events stay in Redis for another receiver or the next start')
      await worker.close(!finished)
    }
    const ready = await this.#ready.catch(() => undefined)
    await ready?.queue.close()
  }

  #seenKey (jobId: string): string {
    return `${this.#options.prefix}:${this.#options.queueName}:sir-seen:${jobId}`
  }
}

/** A durable inbox on BullMQ and Redis, for receivers on several machines. */
export function bullmqInbox (options: BullmqInboxOptions): BullmqInbox {
  return new BullmqInbox(options)
}
