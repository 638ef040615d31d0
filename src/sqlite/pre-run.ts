import type { AnyEvent } from '../core/events.js'
import type { DeadLetter } from '../core/handlers.js'
import type { InboxRuntime } from '../core/inbox.js'
import type { HandlerOrdering } from '../core/ordering/engine.js'
import { errorSummary } from '../core/outcome.js'
import { idFromKey } from './ids.js'
import { storedEvent } from './rows.js'
import type { EventRow } from './schema.js'

/** How a claimed event ends without a handler run: its outcome, and the dead letter to report after it is written. */
export interface NotRun {
  event?: undefined
  finish: { state: 'done' | 'dead', succeeded: string, lastError: string | null, skipped?: 'stale' }
  deadLetter?: DeadLetter
}

/**
 * What a claimed row runs, or why it runs nothing: an event that cannot be
 * parsed (running it would fail the same way every time), a stale ordered event
 * under `skipStale` (done, recorded as `stale`), or one started as often as
 * retries allow and never finished (the process died each time; running it
 * again could crash the receiver forever).
 */
export function beforeRun (row: EventRow, runtime: InboxRuntime, ordering: HandlerOrdering | undefined): { event: AnyEvent } | NotRun {
  let event: AnyEvent
  try {
    event = storedEvent(row)
  } catch (error) {
    runtime.logger.error({ err: error, event: { id: idFromKey(row.id), type: row.type } }, 'the SQLite inbox cannot parse a stored event; it is marked dead without running')
    return { finish: { state: 'dead', succeeded: row.succeeded, lastError: errorSummary(error) } }
  }
  if (ordering !== undefined && runtime.ordering?.skips(ordering) === true) {
    return { finish: { state: 'done', succeeded: row.succeeded, lastError: null, skipped: 'stale' } }
  }
  if (row.attempts > runtime.options.retry.attempts) {
    const error = new Error(`the receiver stopped during each of ${row.attempts - 1} attempts`)
    return {
      finish: { state: 'dead', succeeded: row.succeeded, lastError: errorSummary(error) },
      deadLetter: { event, reason: 'handler_failed', error, attempts: row.attempts - 1, receivedAt: new Date(row.received_at) }
    }
  }
  return { event }
}
