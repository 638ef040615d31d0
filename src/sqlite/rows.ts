import { parseEnvelope } from '../core/envelope.js'
import type { AnyEvent } from '../core/events.js'
import type { EventOutcome } from '../core/outcome.js'
import { attemptLog } from './flow-attempt.js'
import { idFromKey } from './ids.js'
import type { EventRow } from './schema.js'

/**
 * A row whose event cannot be parsed any more (a damaged page, a hand edit). Its
 * message says so without a word of the stored text: JSON.parse's own message
 * quotes the text around the fault, and bodies are never logged.
 */
export class UnreadableEventError extends Error {
  readonly code = 'SQLITE_INBOX_UNREADABLE_EVENT'
  constructor (row: EventRow) {
    super(`the stored event could not be parsed (${row.body === null ? `${row.event.length} characters of JSON` : `${row.body.byteLength} bytes`})`)
    this.name = 'UnreadableEventError'
  }
}

/**
 * The bytes to keep for an accepted event: the body exactly as received, so a
 * handler, `inbox show` and a duplicate's comparison all see what the sender
 * signed. Without one (a caller of `accept` that has no body), the event as JSON.
 */
export function bodyToStore (event: AnyEvent, rawBody: Uint8Array | undefined): Buffer {
  if (rawBody === undefined) return Buffer.from(JSON.stringify(event))
  return Buffer.isBuffer(rawBody) ? rawBody : Buffer.from(rawBody.buffer, rawBody.byteOffset, rawBody.byteLength)
}

/**
 * The event handlers get: parsed from the stored bytes by the pipeline's own
 * parser, so it is the event the delivery's verification and parse produced.
 * Rows of schema 1 keep it as JSON text.
 */
export function storedEvent (row: EventRow): AnyEvent {
  if (row.body !== null) {
    const parsed = parseEnvelope(row.body)
    if (parsed.ok) return parsed.event
    throw new UnreadableEventError(row)
  }
  try {
    return JSON.parse(row.event) as AnyEvent
  } catch {
    throw new UnreadableEventError(row)
  }
}

export function toOutcome (row: EventRow): EventOutcome {
  const outcome: EventOutcome = {
    id: idFromKey(row.id),
    type: row.type,
    state: row.state,
    receivedAt: new Date(row.received_at),
    attempts: row.attempts
  }
  try {
    const event = storedEvent(row)
    // The parsed type, exact: the type column is for queries and may have lost a lone surrogate.
    outcome.type = event.type
    outcome.event = event
  } catch {
    // Shown without its event; the body, if any, is still there to look at.
  }
  if (row.body !== null) outcome.body = row.body.toString('utf8')
  if (row.last_error !== null) outcome.lastError = row.last_error
  if (row.finished_at !== null) outcome.finishedAt = new Date(row.finished_at)
  const log = attemptLog(row)
  if (log !== undefined) outcome.attemptLog = log
  if (row.skipped === 'stale' && outcome.state === 'done') outcome.skipped = 'stale'
  if (row.ordering_key !== null && row.ordering_key !== undefined) outcome.orderingKey = row.ordering_key
  if (outcome.orderingKey !== undefined && row.stale !== null && row.stale !== undefined) outcome.stale = row.stale === 1
  // A done event's handlers all finished: the list is what a pending or dead one will not run again.
  if (row.state !== 'done') outcome.handled = handledKeys(row.succeeded)
  return outcome
}

/** The `succeeded` column's handler keys; a list that cannot be read shows as none, as the runner would run them all. */
function handledKeys (succeeded: string): string[] {
  try {
    const keys: unknown = JSON.parse(succeeded)
    return Array.isArray(keys) ? keys.filter((key): key is string => typeof key === 'string') : []
  } catch {
    return []
  }
}
