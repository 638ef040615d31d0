import type { AnyEvent } from '../core/events.js'
import type { FlowCarry } from '../core/flow/attempt.js'
import type { OutcomeState } from '../core/outcome.js'
import { recordColumns } from './event-record.js'
import { deferStatement, type FlowWait } from './flow-wait.js'
import { orderingQueriesFor, textArray } from './ordering-sql.js'
import { quoted } from './schema.js'
import { storedText } from './stored-text.js'

/** An `events` row as the claim and the outcome queries return it (bigints come back as strings). */
export interface EventRow {
  /** The stored key (stored-text.ts): the event's own id is in its body. */
  id: string
  type: string
  /** The body as received. */
  body: string
  state: OutcomeState
  received_at: string
  last_error: string | null
  finished_at: string | null
  started: number
  /** The newest failed or deferred handler runs, oldest first (only the outcome queries read it). */
  attempt_log?: LoggedRun[] | null
  /** Only the outcome queries read it. */
  ordering_key?: string | null
  /** The outcome queries' `recordColumns` (event-record.ts). */
  stale?: boolean | null
  skipped?: string | null
  handled?: string[]
}

/** An attempt log entry as stored (jsonb): `at` in ms since the epoch. */
export interface LoggedRun {
  handler: string
  attempt: number
  at: number
  outcome: 'failed' | 'deferred'
  error: string
}

/** Entries an event's attempt log keeps: the newest. */
export const ATTEMPT_LOG_MAX = 50

export interface ClaimedRow extends EventRow {
  succeeded: string[]
  /** An ordered event's key, createdAt (ms), acceptance order and the key's newest handled createdAt; absent or null otherwise. */
  ordering_key?: string | null
  created_at_ms?: string | null
  order_seq?: string | null
  newest_handled_ms?: string | null
  /** What flow control keeps with a deferred event between its runs. */
  flow: FlowCarry | null
  /** The body parsed (workers.ts); undefined if the row no longer holds an event. */
  event: AnyEvent | undefined
}

/** A value as an SQL literal: `client.escapeLiteral` for text, an integer for numbers, NULL for null. */
export type Literal = (value: string | number | null) => string

/**
 * The SQL of one inbox, for its schema. Most take numbered parameters. The
 * worker's statements are simple queries of several statements each, one round
 * trip where parameters would need one per statement: their values come in as
 * literals, escaped by the client (`Literal`).
 */
export interface Queries {
  /** Opens an accept's transaction. */
  beginAccept: string
  /**
   * $1 ids, $2 types, $3 bodies, $4 received_at, $5 ordering keys, $6 createdAt ms,
   * $7 not before (received_at plus `ordering.holdMs`): the ids actually inserted
   * (the others were there already). An ordered event's key row is made with it.
   */
  acceptBatch: string
  /** $1 ids, $2 bodies: the positions (from 1) of the pairs whose stored body is not the one given (duplicates only). */
  bodiesDiffer: string
  /** Wakes every instance after accepts committed, in its own unflushed transaction; the payload is the notifier's (notifier.ts). */
  notifyOthers (payload: string): string
  wakeChannel: string
  countPending: string
  analyzeEvents: string
  /** The plan of a count of the pending events: its row estimate is what the planner believes is pending. */
  pendingEstimate: string
  /** $1 now, $2 limit, $3 ids to leave out (running here): ids of pending events due by now, oldest first, without locking them. */
  dueIds: string
  /** `dueIds` with the `ordering` option: of an ordered key, only its head, and none of a blocked key. */
  dueIdsOrdered: string
  /**
   * Opens the worker's transaction, claims in it those of `ids` that are
   * pending, due and held by nobody, and opens the savepoint for the first handler.
   * `ordered` (the `ordering` option): an ordered event is claimed only as the
   * head of its key, not blocked, with its key's row locked too (ordering-store.ts).
   */
  beginAndClaim (literal: Literal, ids: readonly string[], now: number, ordered?: boolean): string
  /** Attempts started, counted on another connection in a simple (unparameterised) query: the ids come as escaped literals. */
  countAttempts (idLiterals: string[]): string
  /** The handlers that succeeded, as [event id, handler] pairs. */
  recordHandled (literal: Literal, handled: ReadonlyArray<readonly [string, string]>, now: number): string
  /** These events are done; `more` adds SET clauses (`recordColumns`). */
  finishDone (literal: Literal, ids: readonly string[], now: number, more?: string): string
  /** The event is done or dead; `more` adds SET clauses (`flowColumns`). */
  finish (literal: Literal, id: string, state: 'done' | 'dead', now: number, lastError: string | null, more?: string): string
  /** The event runs again at `nextAttemptAt`; a null `lastError` keeps the one there. */
  retryLater (literal: Literal, id: string, nextAttemptAt: number, lastError: string | null, more?: string): string
  /** Flow control put the event's runs off, nothing failed: it waits as `wait` says (core/flow/waits.ts). */
  defer (literal: Literal, id: string, wait: FlowWait, more?: string): string
  /** SET clauses: the flow carry (JSON or null), and `log` appended to the attempt log, which keeps the newest ATTEMPT_LOG_MAX. */
  flowColumns (literal: Literal, carry: string | null, log: readonly LoggedRun[]): string
  /** Takes back the attempt counted for a run that was deferred (RetryLater): no attempt used. */
  uncountAttempt (literal: Literal, id: string): string
  /** $1 id */
  outcome: string
  /** $1 limit */
  deadLetters: string
  /** $1 id, $2 now, $3 channel */
  redrive: string
  /** $1 state, $2 before */
  purge: string
  countPurgeable: string
  countByState: string
}

const EVENT_COLUMNS = 'e.id, e.type, e.body, e.state, e.received_at, e.last_error, e.finished_at, coalesce(a.started, 0) AS started'

export function queriesFor (schema: string, handlerSynchronousCommit: boolean, idleInTransactionTimeoutMs: number): Queries {
  const s = quoted(schema)
  const ordering = orderingQueriesFor(schema)
  // An event's transaction commits without waiting for the WAL flush unless asked
  // to: should the server crash before the flush, the handlers' writes, their
  // success records and the event's state are lost together, so the event is
  // pending again and runs again, still once in effect. The accept, which no
  // retry could bring back, always waits for the flush.
  // A plain name (the schema is [a-z0-9_]), so it can stand in the SQL as written.
  const wakeChannel = `${schema}_events`
  // A transaction of the inbox's that waits longer than this between statements
  // (its process stopped, or hung) has its session ended by the server: the
  // claims it held are free for another instance, instead of held for as long
  // as the process is stopped. Given here for an app's pool, whose other
  // transactions it leaves alone; 0 when the inbox's own pool has it on its
  // sessions (parts.ts).
  const idleLimit = idleInTransactionTimeoutMs > 0 ? `; SET LOCAL idle_in_transaction_session_timeout TO ${integer(idleInTransactionTimeoutMs)}` : ''
  const begin = (handlerSynchronousCommit ? 'BEGIN' : 'BEGIN; SET LOCAL synchronous_commit TO off') + idleLimit
  return {
    beginAccept: 'BEGIN' + idleLimit,
    // No NOTIFY here: a transaction that notifies holds Postgres's one notify lock
    // through its commit, WAL flush included, so accepts that notified committed
    // one at a time (~230 a second on a 4.4 ms fsync) however many were in flight.
    // Other instances are woken by `notifyOthers` after the commit instead.
    // An ordered event's hold is its first due time: it waits in its key's line
    // as the head, so nothing of its key passes it. Its sequence number is taken
    // in the batch's order, the acceptance order that breaks createdAt's ties.
    // The key rows go in sorted, so that two batches never wait on each other's.
    acceptBatch: `
      WITH inserted AS (
        INSERT INTO ${s}.events (id, type, body, received_at, next_attempt_at, ordering_key, created_at_ms, order_seq)
        SELECT id, type, body, received_at, not_before, ordering_key, created_at_ms,
          CASE WHEN ordering_key IS NULL THEN NULL ELSE nextval('${s}.events_order_seq') END
        FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::bigint[], $7::bigint[])
          WITH ORDINALITY AS batch (id, type, body, received_at, ordering_key, created_at_ms, not_before, position)
        ORDER BY position
        ON CONFLICT (id) DO NOTHING
        RETURNING id, ordering_key
      ), keys AS (
        INSERT INTO ${s}.ordering_keys (key)
        SELECT DISTINCT ordering_key FROM inserted WHERE ordering_key IS NOT NULL ORDER BY ordering_key
        ON CONFLICT (key) DO NOTHING
      )
      SELECT id FROM inserted`,
    bodiesDiffer: `
      SELECT b.position FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS b (id, body, position)
      JOIN ${s}.events e ON e.id = b.id WHERE e.body <> b.body`,
    // Its own short transaction, not flushed: a lost wake-up costs one poll interval.
    notifyOthers: (payload) => `BEGIN; SET LOCAL synchronous_commit TO off; SELECT pg_notify('${wakeChannel}', '${plain(payload)}'); COMMIT`,
    wakeChannel,
    // The oldest in the same pass over the pending rows: the age of the backlog, for stats().flow.
    countPending: `SELECT count(*)::integer AS pending, min(received_at) AS oldest FROM ${s}.events WHERE state = 'pending'`,
    // After a burst, so that the planner knows how many are pending (planner-stats.ts).
    analyzeEvents: `ANALYZE (SKIP_LOCKED) ${s}.events, ${s}.ordering_keys`,
    pendingEstimate: `EXPLAIN (FORMAT JSON) SELECT 1 FROM ${s}.events WHERE state = 'pending'`,
    // Without locks: the claim that follows checks each id again under its row lock.
    // The events running here are pending too (their rows are locked, not finished):
    // left out, so that the limit counts only ids worth trying.
    dueIds: `
      SELECT id FROM ${s}.events
      WHERE state = 'pending' AND next_attempt_at <= $1 AND NOT (id = ANY ($3::text[]))
      ORDER BY next_attempt_at
      LIMIT $2`,
    dueIdsOrdered: `
      SELECT id FROM ${s}.events e
      WHERE state = 'pending' AND next_attempt_at <= $1 AND NOT (id = ANY ($3::text[])) AND ${ordering.dueHead}
      ORDER BY next_attempt_at
      LIMIT $2`,
    // The state and time are written so that no index can serve them: given the
    // plain conditions, the planner ANDed the primary key with the due-events
    // index, and read that index's dead entries all over again (see candidates.ts).
    // FOR NO KEY UPDATE, the lock an UPDATE that keeps the key takes: it excludes
    // every other claim and any UPDATE, and is the weakest lock that does.
    beginAndClaim: (literal, ids, now, ordered = false) => {
      const claim = (more: string, join: string): string => `
      SELECT ${EVENT_COLUMNS}, e.flow,
        coalesce((SELECT array_agg(h.handler) FROM ${s}.handled h WHERE h.event_id = e.id), '{}') AS succeeded${more}
      FROM ${s}.events e ${join}LEFT JOIN ${s}.attempts a ON a.event_id = e.id
      WHERE e.id IN (${ids.map(literal).join(', ')})
        AND coalesce(e.state, '') = 'pending' AND e.next_attempt_at + 0 <= ${integer(now)}`
      if (!ordered) return `${begin};${claim('', '')}\n      FOR NO KEY UPDATE OF e SKIP LOCKED;\n      SAVEPOINT sir_handler`
      // One claim for ordered and unordered events: an ordered event is claimed
      // when its key's row can be locked and says it may run. The key's row lock
      // is the key's: held to this transaction's end, so one run of a key at a
      // time across every receiver, freed by a crash. A function (schema.ts,
      // version 6), so that its plan is kept in the session and not made anew
      // for each batch.
      return `${begin};
      SELECT * FROM ${s}.sir_claim_ordered(${textArray(literal, ids)}, ${integer(now)});
      SAVEPOINT sir_handler`
    },
    countAttempts: (idLiterals) => `
      INSERT INTO ${s}.attempts (event_id, started) VALUES ${idLiterals.map((id) => `(${id}, 1)`).join(', ')}
      ON CONFLICT (event_id) DO UPDATE SET started = ${s}.attempts.started + 1`,
    recordHandled: (literal, handled, now) => `
      INSERT INTO ${s}.handled (event_id, handler, handled_at)
      VALUES ${handled.map(([id, handler]) => `(${literal(id)}, ${literal(handler)}, ${literal(now)})`).join(', ')}`,
    // Done: no flow record to carry any more (a replay starts the RetryLater bound afresh).
    finishDone: (literal, ids, now, more = '') => `
      UPDATE ${s}.events SET state = 'done', finished_at = ${literal(now)}, flow = NULL${more} WHERE id IN (${ids.map(literal).join(', ')})`,
    finish: (literal, id, state, now, lastError, more = '') => `
      UPDATE ${s}.events SET state = ${literal(state)}, finished_at = ${literal(now)}, last_error = coalesce(${literal(lastError)}, last_error)${more}
      WHERE id = ${literal(id)}`,
    retryLater: (literal, id, nextAttemptAt, lastError, more = '') => `
      UPDATE ${s}.events SET next_attempt_at = ${literal(nextAttemptAt)}, last_error = coalesce(${literal(lastError)}, last_error),
        wait_reason = NULL, wait_handler = NULL${more} WHERE id = ${literal(id)}`,
    defer: (literal, id, wait, more = '') => deferStatement(s, literal, id, wait, more),
    flowColumns: (literal, carry, log) => {
      const carried = carry === null ? 'NULL' : `${literal(carry)}::jsonb`
      if (log.length === 0) return `, flow = ${carried}`
      // jsonb refuses \u0000 and lone surrogates: an error holding one has it written out (as `last_error` has a NUL).
      const entries = JSON.stringify(log, (_key, value: unknown) => typeof value === 'string' ? value.replace(/[\0\p{Cs}]/gu, writtenOut) : value)
      const appended = `coalesce(attempt_log, '[]'::jsonb) || ${literal(entries)}::jsonb`
      return `, flow = ${carried}, attempt_log = (
        SELECT jsonb_agg(entry ORDER BY position) FROM jsonb_array_elements(${appended}) WITH ORDINALITY AS log (entry, position)
        WHERE position > jsonb_array_length(${appended}) - ${ATTEMPT_LOG_MAX})`
    },
    uncountAttempt: (literal, id) => `UPDATE ${s}.attempts SET started = greatest(0, started - 1) WHERE event_id = ${literal(id)}`,
    outcome: `SELECT ${EVENT_COLUMNS}, e.attempt_log, e.ordering_key, ${recordColumns(s)} FROM ${s}.events e LEFT JOIN ${s}.attempts a ON a.event_id = e.id WHERE e.id = $1`,
    deadLetters: `
      SELECT ${EVENT_COLUMNS}, e.attempt_log, e.ordering_key, ${recordColumns(s)} FROM ${s}.events e LEFT JOIN ${s}.attempts a ON a.event_id = e.id
      WHERE e.state = 'dead' ORDER BY e.finished_at, e.id LIMIT $1`,
    // One statement: the event is pending again, its attempts (and RetryLater's count) start from 0, the
    // ordering key it blocked moves on (it runs in its place, by createdAt), and every instance is woken,
    // or none of it happened. Handlers that succeeded keep their record and are not run again.
    redrive: `
      WITH revived AS (
        UPDATE ${s}.events SET state = 'pending', next_attempt_at = $2, finished_at = NULL, flow = NULL WHERE id = $1 AND state = 'dead' RETURNING id
      ), reset AS (
        UPDATE ${s}.attempts SET started = 0 WHERE event_id IN (SELECT id FROM revived)
      ), unblocked AS (${ordering.unblockRevived})
      SELECT id, pg_notify($3, '') FROM revived`,
    // The event's handler and attempt records go with it, in the same statement.
    purge: `
      WITH purged AS (
        DELETE FROM ${s}.events WHERE state = $1 AND finished_at < $2 RETURNING id
      ), handled AS (
        DELETE FROM ${s}.handled WHERE event_id IN (SELECT id FROM purged)
      ), attempts AS (
        DELETE FROM ${s}.attempts WHERE event_id IN (SELECT id FROM purged)
      )
      SELECT count(*)::integer AS purged FROM purged`,
    // What `purge` would delete, for a dry run.
    countPurgeable: `SELECT count(*)::integer AS purged FROM ${s}.events WHERE state = $1 AND finished_at < $2`,
    countByState: `SELECT state, count(*) AS count FROM ${s}.events GROUP BY state`
  }
}

/** A character as its JSON escape, in text: `\u0000`. */
export function writtenOut (character: string): string {
  return '\\u' + character.charCodeAt(0).toString(16).padStart(4, '0')
}

/** Times are whole milliseconds; a fractional clock reading is cut, anything else is refused. */
function integer (value: number): string {
  if (!Number.isFinite(value)) throw new TypeError(`sir-webhooks: expected a number for SQL, got ${value}`)
  return String(Math.floor(value))
}

/** Written into the SQL as it is: lower-case letters, digits, ':' and '-' only. */
function plain (value: string): string {
  if (!/^[0-9a-z:-]*$/.test(value)) throw new TypeError(`sir-webhooks: expected lower-case letters, digits, ':' or '-' for SQL, got ${JSON.stringify(value)}`)
  return value
}

/**
 * Literals for the worker's simple queries on `client`: text escaped by it (a NUL,
 * which would cut the query short, written as `\u0000`), integers checked.
 */
export function literalsOf (client: { escapeLiteral: (text: string) => string }): Literal {
  return (value) => value === null ? 'NULL' : typeof value === 'number' ? integer(value) : client.escapeLiteral(storedText(value))
}
