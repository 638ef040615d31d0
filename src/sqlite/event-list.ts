import type BetterSqlite3 from 'better-sqlite3'
import { checkEventQuery } from '../core/event-query.js'
import type { EventQuery, WaitingRuns } from '../core/inbox.js'
import type { EventOutcome } from '../core/outcome.js'
import type { EventRow } from './schema.js'

export type { EventQuery } from '../core/inbox.js'

/**
 * A failed or deferred run of `@handler` in the row's attempt log (its newest 50
 * runs, flow-attempt.ts). An operator's query: a scan of the rows the other
 * filters leave, no index. CASE, not AND: a log that is not JSON, or an entry
 * that is not an object (a hand edit), is passed over instead of failing the
 * whole listing.
 */
const HAS_HANDLER_RUN = `CASE WHEN json_valid(attempt_log)
  THEN EXISTS (SELECT 1 FROM json_each(sir_webhook_events.attempt_log) WHERE CASE WHEN type = 'object' THEN json_extract(value, '$.handler') END = @handler)
  ELSE 0 END`

/**
 * The dashboard's listing: events by type, state, time received and handler, newest
 * first. Built per call from fixed fragments and bound parameters; an operator's
 * page, not a hot path, so the statement is not cached.
 */
export function listEvents (db: BetterSqlite3.Database, query: EventQuery | undefined, toOutcome: (row: EventRow) => EventOutcome): EventOutcome[] {
  const checked = checkEventQuery(query)
  const where: string[] = []
  const values: Record<string, string | number> = { limit: checked.limit }
  if (checked.type !== undefined) { where.push('type = @type'); values.type = checked.type }
  if (checked.state !== undefined) { where.push('state = @state'); values.state = checked.state }
  if (checked.since !== undefined) { where.push('received_at >= @since'); values.since = checked.since }
  if (checked.until !== undefined) { where.push('received_at < @until'); values.until = checked.until }
  if (checked.handler !== undefined) { where.push(HAS_HANDLER_RUN); values.handler = checked.handler }
  const sql = `SELECT * FROM sir_webhook_events ${where.length === 0 ? '' : 'WHERE ' + where.join(' AND ')} ORDER BY received_at ${checked.order}, id ${checked.order} LIMIT @limit`
  return db.prepare<[Record<string, string | number>], EventRow>(sql).all(values).map(toOutcome)
}

/**
 * Events whose last run was put off by flow control and not run since, by the
 * handler key and reason the deferral wrote (`wait_handler`, `wait_reason`):
 * read from the partial index that only deferred events enter.
 */
export function waitingRuns (db: BetterSqlite3.Database): WaitingRuns[] {
  return db.prepare<[], WaitingRuns>(`
    SELECT wait_handler AS handler, wait_reason AS reason, count(*) AS events FROM sir_webhook_events
    WHERE wait_reason IS NOT NULL AND state = 'pending' GROUP BY wait_reason, wait_handler ORDER BY wait_handler, wait_reason`).all()
}
