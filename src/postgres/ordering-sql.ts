import type { Literal } from './queries.js'
import { quoted } from './schema.js'

/**
 * The pending event of a key that comes first by (createdAt, acceptance): the
 * first entry of the key's line in `events_ordering_head`, read by one index
 * seek whatever the planner knows of the table. Asked as "no pending event of
 * the key comes before it", the planner, once statistics showed one key holding
 * most events (a hot key), answered it with a scan of the whole key: 1 ms an
 * event, and the hot key ran at 300/s where it had run at 500/s.
 */
function headOf (s: string, key: string, columns: string): string {
  return `SELECT ${columns} FROM ${s}.events o WHERE o.ordering_key = ${key} AND o.state = 'pending' ORDER BY o.created_at_ms, o.order_seq LIMIT 1`
}

/** An SQL `text[]` of `values`, each as a literal (the worker's simple queries take no parameters). */
export function textArray (literal: Literal, values: readonly string[]): string {
  return `ARRAY[${values.map(literal).join(', ')}]::text[]`
}

/** An ordered event is the head of its key. */
function isHead (s: string, e: string): string {
  return `${e}.id = (${headOf(s, `${e}.ordering_key`, 'o.id')})`
}

/** The SQL ordering adds to the inbox's (ordering-store.ts says how it holds together). */
export interface OrderingQueries {
  /** For the scan of due ids: unordered, or the head of a key not blocked (a behind event would only fail its claim). */
  dueHead: string
  /** $1 keys: each key's head, with when it is due. */
  nextHeads: string
  /**
   * The batch's commit for its ordered events: each handled (or stale-skipped)
   * event's createdAt is its key's newest handled, if newer, and its key is
   * free; then each of `released` keys' next head, with when it is due. One
   * call of a function (schema.ts, version 6) whose plans the session keeps.
   */
  movedOn (literal: Literal, handled: ReadonlyArray<{ key: string, createdAt: number }>, released: readonly string[], now: number): string
  /** The event dead-lettered under onDeadLetter 'block': the key waits for it. */
  block (literal: Literal, key: string, id: string, now: number): string
  /** The event dead-lettered under onDeadLetter 'skip': the key is free. */
  skip (literal: Literal, key: string, id: string): string
  /** The event failed or was deferred, and runs again: it holds its key until then. */
  hold (literal: Literal, key: string, id: string): string
  /** In a redrive or requeue: the keys blocked by the events of `revived` move on. */
  unblockRevived: string
  /** $1 key: unblocks it; the key, when it was blocked. */
  unblock: string
  blocked: string
  counts: string
  /** $1 cutoff: forgets keys with nothing pending nor blocked whose newest handled was last moved before it. */
  purgeKeys: string
  /** Makes the key row of any pending ordered event that lacks one (an accept that raced the purge of its key). */
  healKeys: string
}

export function orderingQueriesFor (schema: string): OrderingQueries {
  const s = quoted(schema)
  return {
    dueHead: `(e.ordering_key IS NULL OR (
      NOT EXISTS (SELECT 1 FROM ${s}.ordering_keys b WHERE b.key = e.ordering_key AND (b.blocked_event IS NOT NULL OR b.live_event <> e.id))
      AND (${isHead(s, 'e')} OR EXISTS (SELECT 1 FROM ${s}.ordering_keys l WHERE l.key = e.ordering_key AND l.live_event = e.id))))`,
    nextHeads: `
      SELECT h.id, h.next_attempt_at FROM unnest($1::text[]) AS k (key)
      CROSS JOIN LATERAL (${headOf(s, 'k.key', 'o.id, o.next_attempt_at')}) h`,
    movedOn: (literal, handled, released, now) => `
      SELECT * FROM ${s}.sir_keys_moved_on(${textArray(literal, handled.map(({ key }) => key))},
        ARRAY[${handled.map(({ createdAt }) => literal(createdAt)).join(', ')}]::bigint[], ${literal(now)}, ${textArray(literal, released)})`,
    block: (literal, key, id, now) => `
      UPDATE ${s}.ordering_keys SET blocked_event = ${literal(id)}, blocked_at = ${literal(now)}, updated_at = ${literal(now)}, live_event = NULL
      WHERE key = ${literal(key)} AND blocked_event IS NULL`,
    skip: (literal, key, id) => `UPDATE ${s}.ordering_keys SET live_event = NULL WHERE key = ${literal(key)} AND live_event = ${literal(id)}`,
    hold: (literal, key, id) => `UPDATE ${s}.ordering_keys SET live_event = ${literal(id)} WHERE key = ${literal(key)}`,
    unblockRevived: `UPDATE ${s}.ordering_keys SET blocked_event = NULL, blocked_at = NULL WHERE blocked_event IN (SELECT id FROM revived)`,
    unblock: `UPDATE ${s}.ordering_keys SET blocked_event = NULL, blocked_at = NULL WHERE key = $1 AND blocked_event IS NOT NULL RETURNING key`,
    blocked: `SELECT key, blocked_event, blocked_at FROM ${s}.ordering_keys WHERE blocked_event IS NOT NULL ORDER BY blocked_at, key`,
    // Waiting: keys with an event that is not the one running or due next (behind it, or behind a block).
    counts: `
      SELECT
        (SELECT count(*)::integer FROM (
          SELECT e.ordering_key FROM ${s}.events e LEFT JOIN ${s}.ordering_keys k ON k.key = e.ordering_key
          WHERE e.state = 'pending' AND e.ordering_key IS NOT NULL
          GROUP BY e.ordering_key HAVING count(*) > 1 OR bool_or(k.blocked_event IS NOT NULL)) w) AS waiting,
        (SELECT count(*)::integer FROM ${s}.ordering_keys WHERE blocked_event IS NOT NULL) AS blocked`,
    purgeKeys: `
      DELETE FROM ${s}.ordering_keys k WHERE k.blocked_event IS NULL AND coalesce(k.updated_at, 0) < $1
        AND NOT EXISTS (SELECT 1 FROM ${s}.events e WHERE e.ordering_key = k.key AND e.state = 'pending')`,
    healKeys: `
      INSERT INTO ${s}.ordering_keys (key)
      SELECT DISTINCT e.ordering_key FROM ${s}.events e
      WHERE e.state = 'pending' AND e.ordering_key IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM ${s}.ordering_keys k WHERE k.key = e.ordering_key)
      ORDER BY 1 ON CONFLICT (key) DO NOTHING`
  }
}
