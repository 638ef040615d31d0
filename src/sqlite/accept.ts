import type { AcceptOutcome } from '../core/inbox.js'
import type { OrderedEventRef } from '../core/ordering/store.js'
import type { SqliteBacklog } from './backlog.js'
import type { IdKey } from './ids.js'
import type { Statements } from './schema.js'

export interface AcceptRow { id: IdKey, type: string, body: Buffer, receivedAt: number }

/** The event's place in its key's line (`ordering.key`), asked only for an event not seen before; undefined: unordered. */
export type PlaceOf = () => OrderedEventRef | undefined

/**
 * One accept, run inside the group commit's write transaction: a duplicate is
 * answered as one even when the backlog is full (it was recorded, so the sender
 * may stop; rows of schema 1 kept no body to compare), then the bound, then the
 * insert. The backlog's count moves with the insert, in the same transaction.
 * The ordering key is computed after the duplicate check, so a duplicate never
 * calls the user's key function; an ordered event's hold is its first due time.
 */
export function acceptRow (sql: Statements, backlog: SqliteBacklog, row: AcceptRow, limit: number, placeOf?: PlaceOf): AcceptOutcome {
  const stored = sql.storedBody.get(row.id)
  if (stored !== undefined) return stored.body === null || stored.body.equals(row.body) ? 'duplicate' : 'duplicate-differs'
  if (!backlog.admits(limit)) return 'full'
  const place = placeOf?.()
  sql.insert.run({ ...row, orderingKey: place?.key ?? null, createdAtMs: place?.createdAt ?? null, notBefore: place?.notBefore ?? row.receivedAt })
  backlog.added(1)
  return 'accepted'
}
