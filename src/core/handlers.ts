import type { WebhookLogger } from './logger.js'
import type { AnyEvent, EventMap, EventName } from './events.js'
import type { ResolvedLimits } from './flow/limits.js'

export interface HandlerContext {
  /** 1 on the first try, then 2, 3… as the handler is retried. */
  attempt: number
  /** When the receiver accepted the delivery. */
  receivedAt: Date
  /** Aborted when shutdown stops waiting: `close()` ran out of its grace period. */
  signal: AbortSignal
  /** A child of the receiver's logger bound to `{ event: { id, type } }`. */
  log: WebhookLogger
  /**
   * Set when the run is a dry-run replay (`webhooks.replay(filter, { dryRun: true })`):
   * nothing of it is recorded, and only the Postgres inbox rolls back what the
   * handler writes (through `transaction`). Skip outside effects (emails, partner
   * API calls) when `replay?.dryRun` is true.
   */
  replay?: { dryRun: boolean }
}

/** `Extra` is what the receiver's inbox adds to the context (the Postgres inbox: `transaction`). */
export type EventHandler<K extends EventName, Extra extends object = object> = (event: EventMap[K], context: HandlerContext & Extra) => unknown
export type AnyEventHandler<Extra extends object = object> = (event: AnyEvent, context: HandlerContext & Extra) => unknown
export type ErrorHandler = (error: unknown, event: AnyEvent, info: FailureInfo) => unknown

export interface FailureInfo {
  /** The handler's name (`{ name }` or the function's), or for an unnamed one `anonymous:<its event types>` (`anonymous:*` for `onAny`). */
  handler: string
  attempts: number
}

export interface DeadLetter {
  event: AnyEvent
  /** `handler_failed`: a handler used up its attempts. `shutdown`: `close()` ran out of time first. */
  reason: 'handler_failed' | 'shutdown'
  /** The handler that failed or did not finish, when one is known. */
  handler?: string
  error?: unknown
  attempts: number
  receivedAt: Date
}

export type DeadLetterHandler = (deadLetter: DeadLetter) => unknown

/** A handler as registered, with a stable name for logs and dead letters. */
export interface RegisteredHandler {
  readonly name: string
  readonly fn: AnyEventHandler
  /** `concurrency` and `rate` as given to `on()`, checked; undefined when neither was. */
  readonly limits?: ResolvedLimits
}
