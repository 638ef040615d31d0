import type { AnyEvent } from './events.js'

/**
 * Where an event stands in a durable inbox. `pending`: accepted, waiting, running
 * or backing off. `done`: every handler succeeded. `dead`: a handler used up its
 * attempts; kept until re-driven or purged.
 */
export type OutcomeState = 'pending' | 'done' | 'dead'

/** The durable record of one event: what a partner keeps of a reward outcome. */
export interface EventOutcome {
  id: string
  type: string
  state: OutcomeState
  /** When the receiver accepted the delivery. */
  receivedAt: Date
  /** Attempts started so far, a crashed one included. */
  attempts: number
  /** The message of the last handler error, when there was one. Never the event body. */
  lastError?: string
  /** When the event was done or dead-lettered. */
  finishedAt?: Date
  /** The event itself, while the inbox still keeps it. */
  event?: AnyEvent
  /**
   * The body exactly as received (UTF-8), where the inbox keeps it: what an
   * operator is shown, with its key order and spacing, rather than `event` re-serialized.
   */
  body?: string
  /**
   * Every failed or deferred handler run, oldest first, where the inbox keeps
   * them (the dashboard's attempt history); `lastError` is the newest one's message.
   */
  attemptLog?: AttemptRecord[]
  /** The event's ordering key, where the receiver's `ordering` gave it one and the inbox keeps it. */
  orderingKey?: string
  /** `stale`: done without running, skipped by `ordering.skipStale` as a newer event of its key was handled first. */
  skipped?: 'stale'
  /**
   * `true` when the event ran, or was skipped, after a newer event of its
   * ordering key had been handled: its handlers were told `ordering.stale`.
   * Where the inbox keeps it; absent for an unordered event.
   */
  stale?: boolean
  /**
   * Keys of the handlers that finished this event (the name, `name#2` for a
   * second handler of that name), where the inbox keeps them: what a retry or
   * a re-drive will not run again. A done event's handlers all finished; an
   * inbox may leave this out for it.
   */
  handled?: string[]
}

/** One handler run that did not succeed, as an inbox records it. Never the event body. */
export interface AttemptRecord {
  handler: string
  /** The handler's attempt number, from 1. */
  attempt: number
  /** When the run ended. */
  at: Date
  /** `failed`: threw (retried or, on the last attempt, dead). `deferred`: put off by flow control, no attempt used. */
  outcome: 'failed' | 'deferred'
  /** `errorSummary()` of what it threw, or why it was deferred. */
  error: string
}

/** Events by state from a store's GROUP BY rows; a state with no row counts 0. */
export function countsByState (rows: Iterable<{ state: OutcomeState, count: number | string }>): Record<OutcomeState, number> {
  const counts: Record<OutcomeState, number> = { pending: 0, done: 0, dead: 0 }
  for (const { state, count } of rows) counts[state] = Number(count)
  return counts
}

export interface DeadLetterQuery {
  /** At most this many, oldest first. Default 100. */
  limit?: number
}

/** Cuts a handler error to a short line for the outcome record. */
export function errorSummary (error: unknown, maxLength = 1000): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
  return text.length > maxLength ? text.slice(0, maxLength - 1) + '…' : text
}
