import { orderingQueriesFor } from './ordering-sql.js'
import type { Pool, PoolClient } from 'pg'
import type { InboxRuntime } from '../core/inbox.js'
import { checkReplayFilter, type CheckedReplayFilter, type ReplayFilter } from '../core/replay-filter.js'
import { dryRunEvent, type ReplayRun } from '../core/replay.js'

// What the inbox's delegating methods name, from one import.
export type { ReplayFilter, RequeueOptions } from '../core/replay-filter.js'
export type { ReplayRun } from '../core/replay.js'
import type { PostgresHandlerExtra } from './run-event.js'
import { quoted } from './schema.js'
import { eventOf, storedKey, storedText } from './stored-text.js'

/**
 * Rows one requeue statement changes: each is its own short transaction, so
 * row locks are held briefly and a million events never sit in one.
 */
export const REQUEUE_BATCH = 500

export interface ReplayEnvironment {
  pool (): Promise<Pool>
  schema: string
  /** The channel every instance listens on: a requeue wakes them as a redrive does. */
  wakeChannel: string
  now (): number
}

/**
 * The filter as a WHERE clause on `events e`, numbered parameters after
 * `first - 1` given ones. `handler` reads the `handled` marks: for dead events,
 * those this handler has none of (it failed, or never ran as another died
 * first); for done events, those it handled.
 */
function whereOf (filter: CheckedReplayFilter, s: string, first: number): { where: string, values: Array<string | number> } {
  const where: string[] = []
  const values: Array<string | number> = []
  const add = (condition: (parameter: string) => string, value: string | number): void => {
    values.push(value)
    where.push(condition(`$${first + values.length - 1}`))
  }
  add((p) => `e.state = ${p}`, filter.state)
  if (filter.type !== undefined) add((p) => `e.type = ${p}`, storedKey(filter.type))
  if (filter.since !== undefined) add((p) => `e.received_at >= ${p}`, filter.since)
  if (filter.until !== undefined) add((p) => `e.received_at < ${p}`, filter.until)
  if (filter.handler !== undefined) {
    add((p) => `${filter.state === 'dead' ? 'NOT ' : ''}EXISTS (SELECT 1 FROM ${s}.handled h WHERE h.event_id = e.id AND h.handler = ${p})`, storedText(filter.handler))
  }
  return { where: where.join(' AND '), values }
}

export async function countMatching (env: ReplayEnvironment, filter: ReplayFilter): Promise<number> {
  const s = quoted(env.schema)
  const { where, values } = whereOf(checkReplayFilter(filter, 'countMatching(filter)'), s, 1)
  const { rows } = await (await env.pool()).query<{ count: number }>(`SELECT count(*)::integer AS count FROM ${s}.events e WHERE ${where}`, values)
  return rows[0]?.count ?? 0
}

/**
 * Makes the matching events pending again, `REQUEUE_BATCH` per statement, and
 * wakes every instance. A dead event is re-driven as `redrive` does (attempts
 * from 0, its handlers' marks kept); a done one is replayed: attempts from 0
 * and its "handled" marks deleted, only `handler`'s when given. The workers
 * then run those handlers on the normal path: each in its savepoint of the
 * claiming transaction, its writes committing with its new "handled" mark.
 * `queued` hears each batch's count as it commits.
 */
export async function requeue (env: ReplayEnvironment, filter: ReplayFilter, queued: (count: number) => void, max = Infinity): Promise<number> {
  const checked = checkReplayFilter(filter, 'requeue(filter)')
  const s = quoted(env.schema)
  const { where, values } = whereOf(checked, s, 3)
  const unmark = checked.state === 'dead'
    ? ''
    : `, unmarked AS (DELETE FROM ${s}.handled WHERE event_id IN (SELECT id FROM revived)${checked.handler === undefined ? '' : ` AND handler = $${values.length + 3}`})`
  // In id order from a cursor (the last parameter): a replayed event
  // that is done again before the last batch is behind the cursor, not replayed twice.
  const cursor = `$${values.length + 3 + (checked.state === 'done' && checked.handler !== undefined ? 1 : 0)}`
  // The batch size after it: smaller for the last batch under `max`.
  const batch = `$${values.length + 4 + (checked.state === 'done' && checked.handler !== undefined ? 1 : 0)}`
  const statement = `
    WITH picked AS (
      SELECT e.id FROM ${s}.events e WHERE ${where} AND e.id > ${cursor} ORDER BY e.id LIMIT ${batch}::integer
    ), revived AS (
      UPDATE ${s}.events SET state = 'pending', next_attempt_at = $1, finished_at = NULL, flow = NULL
      WHERE id IN (SELECT id FROM picked) AND state = $3 RETURNING id
    ), reset AS (
      UPDATE ${s}.attempts SET started = 0 WHERE event_id IN (SELECT id FROM revived)
    ), unblocked AS (${orderingQueriesFor(env.schema).unblockRevived})${unmark}
    SELECT n AS queued, (SELECT count(*)::integer FROM picked) AS picked, (SELECT max(id) FROM picked) AS last,
      CASE WHEN n > 0 THEN pg_notify($2, '') END AS woken
    FROM (SELECT count(*)::integer AS n FROM revived) c`
  const extra = checked.state === 'done' && checked.handler !== undefined ? [storedText(checked.handler)] : []
  const pool = await env.pool()
  let total = 0
  let after = ''
  for (;;) {
    const { rows } = await pool.query<{ queued: number, picked: number, last: string | null }>(statement, [env.now(), env.wakeChannel, ...values, ...extra, after, Math.min(REQUEUE_BATCH, max - total)])
    const changed = rows[0]?.queued ?? 0
    total += changed
    if (changed > 0) queued(changed)
    if ((rows[0]?.picked ?? 0) < REQUEUE_BATCH || rows[0]?.last == null || total >= max) return total
    after = rows[0].last
  }
}

/**
 * Runs the current handlers on at most `limit` matching events, the oldest
 * received first. Each handler run is in a transaction of its own that is
 * always rolled back: what it writes through `transaction` never persists, and
 * the event's row is not touched.
 */
export async function replayDryRun (env: ReplayEnvironment, runtime: InboxRuntime<PostgresHandlerExtra> | undefined, filter: ReplayFilter, limit: number): Promise<ReplayRun[]> {
  if (runtime === undefined) throw new Error('sir-webhooks: replay() needs the Postgres inbox started by its receiver')
  const checked = checkReplayFilter(filter, 'replay(filter)')
  const s = quoted(env.schema)
  const { where, values } = whereOf(checked, s, 1)
  const pool = await env.pool()
  const { rows } = await pool.query<{ id: string, body: string, received_at: string, succeeded: string[] }>(`
    SELECT e.id, e.body, e.received_at, coalesce((SELECT array_agg(h.handler) FROM ${s}.handled h WHERE h.event_id = e.id), '{}') AS succeeded
    FROM ${s}.events e WHERE ${where} ORDER BY e.received_at, e.id LIMIT $${values.length + 1}`, [...values, limit])
  const runs: ReplayRun[] = []
  for (const row of rows) {
    const event = eventOf(row.body)
    if (event === undefined) {
      runs.push({ id: row.id, handler: '', outcome: 'failed', error: 'the stored body is not an event' })
      continue
    }
    runs.push(...await dryRunEvent(runtime, { event, receivedAt: Number(row.received_at), succeeded: row.succeeded }, checked, async (run) => { await inRolledBackTransaction(pool, run) }))
  }
  return runs
}

async function inRolledBackTransaction (pool: Pool, run: (extra: PostgresHandlerExtra) => Promise<void>): Promise<void> {
  const client: PoolClient = await pool.connect()
  let broken: Error | undefined
  try {
    await client.query('BEGIN')
    try {
      await run({ transaction: client })
    } finally {
      // Whatever the handler did: nothing of a dry run is kept.
      await client.query('ROLLBACK').catch((error: unknown) => { broken = error as Error })
    }
  } finally {
    // A connection that could not roll back is not given back to the pool.
    client.release(broken)
  }
}
