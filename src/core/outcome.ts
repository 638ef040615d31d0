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
