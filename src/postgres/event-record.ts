// An event's record as the Postgres inbox answers it (outcome(), deadLetters(), events()):
// the row made an `EventOutcome`, with what ordering and the `handled` marks add to it.
import type { AttemptRecord, EventOutcome } from '../core/outcome.js'
import type { EventRow, LoggedRun } from './queries.js'
import { eventOf } from './stored-text.js'

/**
 * Columns the record queries add on `events e` (the schema quoted): the stale
 * and skipped marks (schema version 4), and the handlers that finished the
 * event, read from its `handled` marks through their primary key.
 */
export function recordColumns (s: string): string {
  return `e.stale, e.skipped, coalesce((SELECT array_agg(h.handler ORDER BY h.handler) FROM ${s}.handled h WHERE h.event_id = e.id), '{}') AS handled`
}

/**
 * SET clauses for the row of an ordered event whose handlers were told
 * `stale` (or not), written with the statement that ends its attempt:
 * `skipped` says it did not run at all (`ordering.skipStale`). An unordered
 * event gets none, so its record has no `stale`.
 */
export function staleColumns (stale: boolean, skipped: boolean): string {
  return `, stale = ${stale ? 'true' : 'false'}, skipped = ${skipped ? "'stale'" : 'NULL'}`
}

/** The record of an event, its id and type as the body has them (the row's may be escaped), and the body as received. */
export function toOutcome (row: EventRow): EventOutcome {
  const event = eventOf(row.body)
  const outcome: EventOutcome = {
    id: event?.id ?? row.id,
    type: event?.type ?? row.type,
    state: row.state,
    receivedAt: new Date(Number(row.received_at)),
    attempts: row.started,
    body: row.body
  }
  if (event !== undefined) outcome.event = event
  if (row.last_error !== null) outcome.lastError = row.last_error
  if (row.finished_at !== null) outcome.finishedAt = new Date(Number(row.finished_at))
  if (row.attempt_log !== undefined && row.attempt_log !== null) outcome.attemptLog = row.attempt_log.map(attemptRecord)
  if (row.ordering_key !== undefined && row.ordering_key !== null) outcome.orderingKey = row.ordering_key
  // A requeued event keeps its marks until its next run rewrites them: `skipped` stands for a done event only.
  if (row.skipped === 'stale' && row.state === 'done') outcome.skipped = 'stale'
  if (typeof row.stale === 'boolean') outcome.stale = row.stale
  if (row.handled !== undefined) outcome.handled = row.handled
  return outcome
}

function attemptRecord (run: LoggedRun): AttemptRecord {
  return { handler: run.handler, attempt: run.attempt, at: new Date(run.at), outcome: run.outcome, error: run.error }
}

