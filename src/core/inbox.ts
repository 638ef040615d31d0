import type { WebhookLogger } from './logger.js'
import type { AnyEvent } from './events.js'
import type { DeadLetter, RegisteredHandler } from './handlers.js'
import type { ResolvedOptions } from './options.js'
import type { DeadLetterQuery, EventOutcome } from './outcome.js'

/**
 * What an inbox answers when asked to take an event. `accepted` and `duplicate`
 * become a 2xx; the rest a 503 with `Retry-After`, and the event is not recorded.
 */
export type AcceptOutcome = 'accepted' | 'duplicate' | 'full' | 'unavailable'

export interface HandlerRun {
  event: AnyEvent
  handler: RegisteredHandler
  attempt: number
  receivedAt: number
}

/** What the receiver lends its inbox: the handlers and how failures are reported. */
export interface InboxRuntime {
  readonly options: ResolvedOptions
  readonly logger: WebhookLogger
  /** Aborted when `close()` runs out of its grace period. */
  readonly signal: AbortSignal
  /** Every handler that should see an event of this type, the `onAny` ones last. */
  handlersFor (type: string): readonly RegisteredHandler[]
  /** Runs one handler once; rejects with what the handler threw. */
  runHandler (run: HandlerRun): Promise<void>
  /**
   * `runHandler` without the promise: returns what the handler returned (a
   * promise, for an async one) and throws what a synchronous handler threw. For
   * inboxes that dispatch in process and count every microtask.
   */
  callHandler (run: HandlerRun): unknown
  /** A handler used up its attempts: tells `onError`, then the dead-letter handlers. */
  handlerFailed (run: HandlerRun, error: unknown): Promise<void>
  /** Reports a dead letter that is not a handler failure, such as events cut off by shutdown. */
  deadLetter (deadLetter: DeadLetter): Promise<void>
}

/**
 * Where accepted events wait and are deduplicated. Dedupe and enqueue sit behind
 * one call so that a durable or shared store can make them one atomic step.
 */
export interface Inbox {
  /** Called once by the receiver that owns the inbox, before the first `accept`. */
  start (runtime: InboxRuntime): void | Promise<void>
  /**
   * Records the event as seen and queues it, or says why not. Must not throw for a
   * full queue. `whenAnswered`, when given, says when the adapter has written the
   * answer: an inbox that runs handlers in this process starts them after it.
   * `waitUntil`, when given, is the platform's way to keep this request's work
   * alive after the response (a Worker's `ctx.waitUntil`): an inbox that runs
   * the handlers in this process hands it a promise that settles once they have
   * finished. It never throws.
   */
  accept (
    event: AnyEvent,
    receivedAt: number,
    whenAnswered?: (callback: () => void) => void,
    waitUntil?: (handlersFinished: Promise<void>) => void
  ): AcceptOutcome | Promise<AcceptOutcome>
  /** Stops taking work, waits up to `graceMs` for accepted events, dead-letters what is left. */
  close (graceMs: number): Promise<void>
  /** Events accepted and not yet finished, where the inbox can tell. */
  readonly size?: number
  /** Resolves when no accepted event is waiting or running in this process, where the inbox can tell. */
  idle? (): Promise<void>
  /** The durable record of one event, where the inbox keeps one. */
  outcome? (id: string): Promise<EventOutcome | undefined>
  /** Events whose handlers used up their attempts, kept until re-driven or purged. */
  deadLetters? (query?: DeadLetterQuery): Promise<EventOutcome[]>
  /** Queues a dead event again, its attempts reset; false when no dead event has this id. */
  redrive? (id: string): Promise<boolean>
}
