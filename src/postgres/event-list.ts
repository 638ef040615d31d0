import type { Pool } from 'pg'
import { checkEventQuery } from '../core/event-query.js'
import type { EventQuery } from '../core/inbox.js'
import type { EventOutcome } from '../core/outcome.js'
import { recordColumns, toOutcome } from './event-record.js'
import { writtenOut, type EventRow } from './queries.js'
import { quoted } from './schema.js'
import { storedKey } from './stored-text.js'

export type { EventQuery } from '../core/inbox.js'

/**
 * The dashboard's listing: events by type, state and time received, newest
 * first, with their attempt counts; or those a handler failed on. Fixed
 * fragments and numbered parameters only.
 */
export async function listEvents (pool: Pool, schema: string, query: EventQuery | undefined): Promise<EventOutcome[]> {
  const checked = checkEventQuery(query)
  const s = quoted(schema)
  const where: string[] = []
  const values: Array<string | number> = []
  const add = (condition: (parameter: string) => string, value: string | number): void => {
    values.push(value)
    where.push(condition(`$${values.length}`))
  }
  if (checked.type !== undefined) add((p) => `e.type = ${p}`, storedKey(checked.type))
  if (checked.state !== undefined) add((p) => `e.state = ${p}`, checked.state)
  if (checked.since !== undefined) add((p) => `e.received_at >= ${p}`, checked.since)
  if (checked.until !== undefined) add((p) => `e.received_at < ${p}`, checked.until)
  // A failed or deferred run of the handler in the attempt log: jsonb containment,
  // the name written as the log writes it (queries.ts, `flowColumns`). No index
  // serves it: the scan follows received_at's, and stops at the limit.
  const handler = checked.handler
  if (handler !== undefined) add((p) => `e.attempt_log @> jsonb_build_array(jsonb_build_object('handler', ${p}::text))`, handler.replace(/[\0\p{Cs}]/gu, writtenOut))
  values.push(checked.limit)
  const { rows } = await pool.query<EventRow>(`
    SELECT e.id, e.type, e.body, e.state, e.received_at, e.last_error, e.finished_at, coalesce(a.started, 0) AS started,
      e.ordering_key, ${recordColumns(s)}
    FROM ${s}.events e LEFT JOIN ${s}.attempts a ON a.event_id = e.id
    ${where.length === 0 ? '' : 'WHERE ' + where.join(' AND ')}
    ORDER BY e.received_at ${checked.order}, e.id ${checked.order} LIMIT $${values.length}`, values)
  return rows.map(toOutcome)
}
