import type { AcceptOutcome } from '../core/inbox.js'
import type { SqliteBacklog } from './backlog.js'
import type { IdKey } from './ids.js'
import type { Statements } from './schema.js'

export interface AcceptRow { id: IdKey, type: string, body: Buffer, receivedAt: number }

/**
 * One accept, run inside the group commit's write transaction: a duplicate is
 * answered as one even when the backlog is full (it was recorded, so the sender
 * may stop; rows of schema 1 kept no body to compare), then the bound, then the
 * insert. The backlog's count moves with the insert, in the same transaction.
 */
export function acceptRow (sql: Statements, backlog: SqliteBacklog, row: AcceptRow, limit: number): AcceptOutcome {
  const stored = sql.storedBody.get(row.id)
  if (stored !== undefined) return stored.body === null || stored.body.equals(row.body) ? 'duplicate' : 'duplicate-differs'
  if (!backlog.admits(limit)) return 'full'
  sql.insert.run(row)
  backlog.added(1)
  return 'accepted'
}
