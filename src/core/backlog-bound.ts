// The bound on a durable inbox's backlog: how many events may wait in its store
// before deliveries get 503. Shared by the SQLite, Postgres and BullMQ inboxes so
// that they choose and explain it the same way (docs/deployment.md, "The backlog bound").
import { integer } from './options.js'
import type { ResolvedOptions } from './resolved-options.js'

/**
 * A durable inbox's default `maxBacklog`. The store, not the process, holds the
 * backlog, so the bound is what the store can hold, not what memory can: a
 * million ~1 KB events is 1-2 GB with its indexes, which an ordinary disk or a
 * Redis sized for the traffic holds, and a little over three minutes of a burst
 * at 5 000 deliveries a second. The free-space checks (SQLite's disk, Redis's
 * memory) answer 503 earlier where the store is smaller than that.
 */
export const DEFAULT_MAX_BACKLOG = 1_000_000

/** The inbox option `maxBacklog`, checked at creation. */
export function resolveMaxBacklog (value: unknown): number {
  return integer('maxBacklog', value, DEFAULT_MAX_BACKLOG, 1)
}

/**
 * How many unfinished events a durable inbox holds before it answers `full`: its
 * own `maxBacklog`, and the receiver's `maxQueueSize` as well when the user set
 * it (an explicit number is honoured, never ignored; the default 10 000 is the
 * memory inbox's and does not apply to a store).
 */
export function backlogLimit (maxBacklog: number, receiver: Pick<ResolvedOptions, 'maxQueueSize' | 'maxQueueSizeSet'> | undefined): number {
  return receiver?.maxQueueSizeSet === true ? Math.min(maxBacklog, receiver.maxQueueSize) : maxBacklog
}
