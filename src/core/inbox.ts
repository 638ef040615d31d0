import type { WebhookLogger } from './logger.js'
import type { AnyEvent } from './events.js'
import type { DeadLetter, RegisteredHandler } from './handlers.js'
import type { ResolvedOptions } from './resolved-options.js'
import { WebhookOptionsError } from './errors.js'
import type { DeadLetterQuery, EventOutcome, OutcomeState } from './outcome.js'
import type { FlowGate } from './flow/gate.js'
import type { FlowStore } from './flow/store.js'
import type { ReplayFilter, RequeueOptions } from './replay-filter.js'
import type { HandlerOrdering, OrderingEngine } from './ordering/engine.js'
import type { OrderingStore } from './ordering/store.js'
import type { ReplayRun } from './replay.js'

/**
 * What an inbox answers when asked to take an event. `accepted`, `duplicate` and
 * `duplicate-differs` become a 2xx; the rest a 503 with `Retry-After`, and the
 * event is not recorded. `duplicate-differs` is a duplicate whose body is not the
 * body first recorded under its id: still answered as a duplicate (the id is the
 * contract's idempotency key), but warned about and counted, so a sender bug shows.
 * An inbox that cannot tell answers `duplicate`.
 */
export type AcceptOutcome = 'accepted' | 'duplicate' | 'duplicate-differs' | 'full' | 'unavailable'

export interface HandlerRun {
  event: AnyEvent
  handler: RegisteredHandler
  attempt: number
  receivedAt: number
  /** Where the event stands in its ordering key, when it has one: the handler context's `ordering`. */
  ordering?: HandlerOrdering | undefined
  /** Set on a dry-run replay's runs (`webhooks.replay(filter, { dryRun: true })`): the handler's `context.replay`. */
  replay?: { dryRun: boolean }
}

/**
 * What the receiver gives its inbox to run handlers with (core/runtime.ts).
 * `Extra` is what the inbox adds to each handler's context, such as the
 * Postgres inbox's `transaction`.
 */
export interface InboxRuntime<Extra extends object = object> {
  readonly options: ResolvedOptions
  readonly logger: WebhookLogger
  /** Aborted when `close()` runs out of its grace period. */
  readonly signal: AbortSignal
  /**
   * False while the receiver has no event handler at all. A durable inbox then
   * claims nothing: a process that only accepts (a web tier whose handlers run in
   * workers) must leave events to the processes that can run them, not finish
   * them with no handler run.
   */
  readonly hasHandlers: boolean
  /**
   * Flow control (pause, per-handler concurrency and rate, RetryLater), present
   * when the inbox offered a `flowStore()`. The inbox asks it before each run and
   * defers, without using an attempt, what it does not admit (docs/design.md).
   */
  readonly flow?: FlowGate
  /**
   * Ordering (the receiver's `ordering` option), present when it is set: the
   * inbox asks it for each accepted event's key and runs one event of a key at a
   * time, with its store (docs/design.md, "Ordering").
   */
  readonly ordering?: OrderingEngine
  /** Every handler that should see an event of this type, the `onAny` ones last. */
  handlersFor (type: string): readonly RegisteredHandler[]
  /**
   * Runs one handler once, `extra` merged into its context. Returns what the
   * handler returned (a promise, for an async one) and throws what a synchronous
   * handler threw: in-process dispatch counts every microtask; `await` it otherwise.
   */
  runHandler (run: HandlerRun, extra?: Extra): unknown
  /** A run started with `runHandler` finished without throwing. */
  handlerSucceeded (run: HandlerRun): void
  /** A run failed and the handler will be tried again in `retryInMs`: logged and counted. */
  handlerRetrying (run: HandlerRun, error: unknown, retryInMs: number): void
  /** A handler used up its attempts: tells `onError`, then the dead-letter handlers. */
  handlerFailed (run: HandlerRun, error: unknown): Promise<void>
  /** Reports a dead letter that is not a handler failure, such as events cut off by shutdown. */
  deadLetter (deadLetter: DeadLetter): Promise<void>
}

/** An inbox's own view of whether it can take and run events (`webhooks.health()` reads it). */
export interface InboxHealth {
  status: 'ok' | 'degraded'
  /** Why not ok, in words an operator can act on; empty when ok. */
  reasons: string[]
}

/** `inbox stats`: how many events wait for one handler, and why (a DeferReason: paused, rate, concurrency, retryLater). */
export interface WaitingRuns {
  handler: string
  reason: string
  events: number
}

/**
 * Where accepted events wait and are deduplicated. Dedupe and enqueue sit behind
 * one call so that a durable or shared store can make them one atomic step.
 * `Extra` is what the inbox adds to every handler's context (type only).
 */
export interface Inbox<Extra extends object = object> {
  /**
   * True when the inbox keeps events across restarts and records which handlers
   * of an event succeeded, by handler name: every handler then needs a unique name.
   */
  readonly durable?: boolean
  /** Never set: carries `Extra` for the handler context's type. */
  readonly handlerContext?: Extra
  /** Called once by the receiver that owns the inbox, before the first `accept`. */
  start (runtime: InboxRuntime<Extra>): void | Promise<void>
  /**
   * Resolves once the inbox's own code is loaded in this process (an optional
   * peer dependency imported), without waiting on its store; never rejects.
   * `webhooks.loaded()` waits for it, and the Fastify plugin before `ready`: a
   * receiver that listened first kept its first deliveries waiting behind the
   * module's loading, a few hundred ms of CPU for bullmq.
   */
  loaded?: () => Promise<void>
  /**
   * Records the event as seen and queues it, or says why not. Must not throw for a
   * full queue. `whenAnswered`, when given, says when the adapter has written the
   * answer: an inbox that runs handlers in this process starts them after it.
   * `waitUntil`, when given, is the platform's way to keep this request's work
   * alive after the response (a Worker's `ctx.waitUntil`): an inbox that runs
   * the handlers in this process hands it a promise that settles once they have
   * finished. `rawBody` is the exact verified body the event was parsed from: an
   * inbox that keeps bodies keeps these bytes, and compares a duplicate's with them.
   * It never throws.
   */
  accept (
    event: AnyEvent,
    receivedAt: number,
    whenAnswered?: (callback: () => void) => void,
    waitUntil?: (handlersFinished: Promise<void>) => void,
    rawBody?: Uint8Array
  ): AcceptOutcome | Promise<AcceptOutcome>
  /** Stops taking work, waits up to `graceMs` for accepted events, dead-letters what is left. */
  close (graceMs: number): Promise<void>
  /** Events accepted and not yet finished, where the inbox can tell. */
  readonly size?: number
  /**
   * A durable inbox's own bound on its backlog (`maxBacklog`): it answers `full`
   * from this many unfinished events (or the receiver's `maxQueueSize`, when the
   * user set it and it is lower). The receiver's default `degradedQueueSize`
   * follows it. Absent on the memory inbox, which `maxQueueSize` bounds.
   */
  readonly maxBacklog?: number
  /** Events whose handlers are running in this process now, where the inbox can tell. */
  readonly running?: number
  /** Resolves when no accepted event is waiting or running in this process, where the inbox can tell. */
  idle? (): Promise<void>
  /**
   * The inbox's flow-control store, asked for once by the receiver. An inbox
   * without it has no flow control: `concurrency`, `rate` and `pause()` are
   * refused, and a `RetryLater` is an ordinary failure.
   */
  flowStore? (): FlowStore
  /**
   * The inbox's ordering store, asked for once by a receiver with the `ordering`
   * option. An inbox without it refuses the option: events of one key could run
   * at once or out of order, and nobody would know.
   */
  orderingStore? (options: ResolvedOptions): OrderingStore
  /** When the oldest event accepted and not finished was received (ms since the epoch), where the inbox can tell. */
  readonly oldestReceivedAt?: number | undefined
  /** Whether the store is taking and running events, where the inbox can tell. */
  health? (): InboxHealth
  /** How many events the inbox holds in each state. */
  counts? (): Promise<Record<OutcomeState, number>>
  /** The durable record of one event, where the inbox keeps one. */
  outcome? (id: string): Promise<EventOutcome | undefined>
  /** Events whose handlers used up their attempts, kept until re-driven or purged. */
  deadLetters? (query?: DeadLetterQuery): Promise<EventOutcome[]>
  /** Events by filter, newest received first, where the inbox keeps them (the dashboard's listing). */
  events? (query?: EventQuery): Promise<EventOutcome[]>
  /** Events whose last run flow control put off, by the handler key and reason they wait for, where the store records it (SQLite): `inbox stats`. */
  waiting? (): Promise<WaitingRuns[]>
  /** How many stored events a replay with this filter would touch (`inbox redrive --dry-run`, the dashboard's count). */
  countMatching? (filter: ReplayFilter): Promise<number>
  /**
   * Queues every event matching the filter again, attempts reset (for `done`
   * with `handler`, only that handler's run); answers how many it queued.
   */
  requeue? (filter: ReplayFilter, options?: RequeueOptions): Promise<number>
  /**
   * Runs the current handlers on at most `limit` stored events matching the
   * filter, oldest first, and records nothing (`webhooks.replay(filter,
   * { dryRun: true })`). Needs the runtime: called only after `start`.
   */
  replayDryRun? (filter: ReplayFilter, limit: number): Promise<ReplayRun[]>
  /** Queues a dead event again, its attempts reset; false when no dead event has this id. */
  redrive? (id: string): Promise<boolean>
  /**
   * Deletes finished events: with `before`, every done or dead one that finished
   * before it; without, those past the inbox's retention. With `dryRun`, deletes
   * nothing and answers how many it would have deleted.
   */
  purge? (options?: PurgeOptions): Promise<PurgeResult>
}

export interface EventQuery {
  /** Only events of this type. */
  type?: string
  /** Only events in this state. */
  state?: OutcomeState
  /** Only events received at or after this moment. */
  since?: Date
  /** Only events received before this moment. */
  until?: Date
  /** At most this many, newest received first. Default 50, at most 500. */
  limit?: number
  /** Oldest received first instead: the longest-waiting pending event is `{ state: 'pending', limit: 1, oldestFirst: true }`. */
  oldestFirst?: boolean
  /**
   * Only events with a failed or deferred run of this handler (its key, as in
   * `AttemptRecord.handler`) in their attempt log: what the handler has been
   * failing on. Inboxes without an attempt log refuse it.
   */
  handler?: string
}

export interface PurgeOptions {
  /** Delete done and dead events that finished before this moment. */
  before?: Date
  /** Count what would be deleted, and delete nothing (`sir-webhooks inbox purge --dry-run`). */
  dryRun?: boolean
}

export interface PurgeResult {
  done: number
  dead: number
}

/** What an inbox adds to its handlers' context: `{}` for most, `{ transaction }` for Postgres. */
export type InboxContext<I> = I extends { readonly handlerContext?: infer Extra } ? (Extra extends object ? Extra : object) : object

/** The one-receiver-per-inbox rule, said the same way by every inbox. */
export function assertNotStarted (started: boolean): void {
  if (started) throw new WebhookOptionsError('an inbox belongs to one receiver; create one per Webhooks instance')
}
