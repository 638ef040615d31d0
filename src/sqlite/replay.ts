import type BetterSqlite3 from 'better-sqlite3'
import { checkReplayFilter, type CheckedReplayFilter, type ReplayFilter } from '../core/replay-filter.js'
import type { InboxRuntime } from '../core/inbox.js'
import { errorSummary } from '../core/outcome.js'
import { dryRunEvent, type ReplayRun } from '../core/replay.js'
import { idFromKey } from './ids.js'
import { storedEvent } from './rows.js'
import type { EventRow } from './schema.js'

export type { ReplayFilter, RequeueOptions } from '../core/replay-filter.js'
export type { ReplayRun } from '../core/replay.js'

/**
 * How many rows one requeue transaction changes: small enough that the write
 * lock is never held for long (accepts wait on it), large enough that a million
 * events take a few thousand commits.
 */
export const REQUEUE_BATCH = 500

type Values = Record<string, string | number>

/**
 * The filter as a WHERE clause of fixed fragments and bound values. `handler`
 * reads the row's `succeeded` list (handler keys): for dead events, those this
 * handler did not finish (it failed, or was never run because another died
 * first); for done events, those it handled.
 */
function whereOf (filter: CheckedReplayFilter): { where: string, values: Values } {
  const where = ['state = @state']
  const values: Values = { state: filter.state }
  if (filter.type !== undefined) { where.push('type = @type'); values.type = filter.type }
  if (filter.since !== undefined) { where.push('received_at >= @since'); values.since = filter.since }
  if (filter.until !== undefined) { where.push('received_at < @until'); values.until = filter.until }
  if (filter.handler !== undefined) {
    where.push(`${filter.state === 'dead' ? 'NOT ' : ''}EXISTS (SELECT 1 FROM json_each(succeeded) WHERE value = @handler)`)
    values.handler = filter.handler
  }
  return { where: where.join(' AND '), values }
}

export function countMatching (db: BetterSqlite3.Database, filter: ReplayFilter): number {
  const { where, values } = whereOf(checkReplayFilter(filter, 'countMatching(filter)'))
  return db.prepare<[Values], number>(`SELECT count(*) FROM sir_webhook_events WHERE ${where}`).pluck().get(values) ?? 0
}

/**
 * Makes the matching events pending again, `REQUEUE_BATCH` rows per write
 * transaction, so memory stays flat and accepts interleave. A dead event is
 * re-driven (attempts reset, its handlers' successes kept); a done one is
 * replayed: attempts reset and its "handled" marks cleared, only `handler`'s
 * when given, so the runner runs exactly those handlers again. Each batch moves
 * its rows out of the filter's state, so the next batch finds the next rows.
 */
export async function requeue (db: BetterSqlite3.Database, filter: ReplayFilter, write: <T>(run: () => T) => Promise<T>, now: () => number, wake: () => void, added: (events: number) => void, max = Infinity): Promise<number> {
  const checked = checkReplayFilter(filter, 'requeue(filter)')
  const { where, values } = whereOf(checked)
  const succeeded = checked.state === 'dead'
    ? 'succeeded'
    : checked.handler === undefined ? "'[]'" : '(SELECT json_group_array(value) FROM json_each(succeeded) WHERE value <> @handler)'
  // In rowid order from a cursor: a replayed event that is done again before
  // the last batch (a fast handler) is behind the cursor, not replayed twice.
  const statement = db.prepare<[Values], number>(`
    UPDATE sir_webhook_events
    SET state = 'pending', attempts = 0, next_attempt_at = @now, finished_at = NULL, lease_owner = NULL, lease_until = NULL,
      flow = NULL, wait_reason = NULL, wait_handler = NULL, skipped = NULL, stale = NULL, succeeded = ${succeeded}
    WHERE rowid IN (SELECT rowid FROM sir_webhook_events WHERE rowid > @after AND ${where} ORDER BY rowid LIMIT @batch)
    RETURNING rowid`).pluck()
  let total = 0
  let after = 0
  for (;;) {
    const rowids = await write(() => {
      const changed = statement.all({ ...values, now: now(), after, batch: Math.min(REQUEUE_BATCH, max - total) })
      // In the same transaction: the backlog bound counts these pending again at once.
      added(changed.length)
      return changed
    })
    total += rowids.length
    // Woken at the first batch: the runner starts on the replay while the rest is queued.
    if (rowids.length > 0) wake()
    if (rowids.length < REQUEUE_BATCH || total >= max) return total
    after = Math.max(...rowids)
  }
}

/**
 * Runs the current handlers on at most `limit` matching events, the oldest
 * received first, and writes nothing: SQLite cannot roll back what a handler
 * did elsewhere, so handlers are told (`context.replay.dryRun`).
 */
export async function replayDryRun (db: BetterSqlite3.Database, runtime: InboxRuntime | undefined, filter: ReplayFilter, limit: number): Promise<ReplayRun[]> {
  if (runtime === undefined) throw new Error('sir-webhooks: replay() needs the SQLite inbox started by its receiver')
  const checked = checkReplayFilter(filter, 'replay(filter)')
  const { where, values } = whereOf(checked)
  const rows = db.prepare<[Values], EventRow>(`SELECT * FROM sir_webhook_events WHERE ${where} ORDER BY received_at, rowid LIMIT @limit`).all({ ...values, limit })
  const runs: ReplayRun[] = []
  for (const row of rows) {
    let event
    try {
      event = storedEvent(row)
    } catch (error) {
      runs.push({ id: idFromKey(row.id), handler: '', outcome: 'failed', error: errorSummary(error) })
      continue
    }
    runs.push(...await dryRunEvent(runtime, { event, receivedAt: row.received_at, succeeded: JSON.parse(row.succeeded) as string[] }, checked))
  }
  return runs
}
