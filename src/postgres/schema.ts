import type { ClientBase } from 'pg'
import { schemaName } from './options.js'

/**
 * The inbox's tables, one migration per version. A migration never changes once
 * released: a new version appends one. Times are milliseconds since the epoch on
 * the receivers' clocks (as in the SQLite inbox), so `clock` moves them in tests.
 *
 * - `events`: one row per event id. The id is the primary key, so the INSERT
 *   that queues an event is also the one that deduplicates it. A worker's claim
 *   is its transaction's row lock on the event's row. An id that text cannot
 *   hold is stored escaped (stored-text.ts).
 * - `handled`: one row per handler that succeeded, written in the transaction
 *   that holds that handler's own writes: both commit, or neither does.
 * - `attempts`: attempts started, kept apart from `events` because it is written
 *   outside the claiming transaction, on another connection, so that an attempt
 *   cut short by a crash (whose transaction rolls back) still counts.
 *
 * `handled` and `attempts` have no foreign key to `events`: the purge deletes
 * their rows with the event's, in one statement. A key check per insert locked
 * the event's row a second time, from a savepoint or another connection (a
 * MultiXact for each event), and cost ~3 % of the inbox's throughput.
 */
const migrations: ReadonlyArray<(schema: string) => string> = [
  // `body` is the request body exactly as received (the signed bytes, as UTF-8
  // text), not jsonb: jsonb refuses valid JSON that holds `\u0000` and
  // reorders keys, and one such event failed every delivery of its batch. The
  // workers parse the text as the receiver did. Version 1 changed in place
  // while the Postgres inbox was unreleased. `events_received` serves the
  // dashboard's listing (newest first, time filters): without it each page view
  // sorted the whole table.
  (s) => `
CREATE TABLE ${s}.events (
  id text PRIMARY KEY,
  type text NOT NULL,
  body text NOT NULL,
  state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'dead')),
  received_at bigint NOT NULL,
  next_attempt_at bigint NOT NULL,
  last_error text,
  finished_at bigint
);
CREATE INDEX events_due ON ${s}.events (next_attempt_at) WHERE state = 'pending';
CREATE INDEX events_finished ON ${s}.events (state, finished_at) WHERE state <> 'pending';
CREATE INDEX events_received ON ${s}.events (received_at);
CREATE TABLE ${s}.handled (
  event_id text NOT NULL,
  handler text NOT NULL,
  handled_at bigint NOT NULL,
  PRIMARY KEY (event_id, handler)
);
CREATE TABLE ${s}.attempts (
  event_id text PRIMARY KEY,
  started integer NOT NULL
);`,
  // Flow control (flow-store.ts), shared by every receiver on the schema:
  // `flow_buckets` one token bucket per rate-limited handler, on the server's
  // clock; `flow_paused` what pause() holds back ('' for every handler). On
  // `events`, `flow` keeps a deferred event's RetryLater records and reserved
  // tokens between its runs, and `attempt_log` its newest failed or deferred
  // handler runs (the dashboard's history). Both are NULL until needed: adding
  // a nullable column without a default rewrites no row.
  (s) => `
CREATE TABLE ${s}.flow_buckets (
  handler text PRIMARY KEY,
  tokens double precision NOT NULL,
  at timestamptz NOT NULL,
  wait_ms integer NOT NULL
);
CREATE TABLE ${s}.flow_paused (
  handler text PRIMARY KEY,
  paused_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE ${s}.events ADD COLUMN flow jsonb, ADD COLUMN attempt_log jsonb;`,
  // Ordering (ordering-store.ts): on `events`, an ordered event's key, its
  // `createdAt` in ms and its acceptance order (`order_seq`, the tie-break);
  // NULL for an event without a key, so no row is rewritten. `ordering_keys`:
  // one row per key, whose row lock is the key's lock (held by the run's own
  // transaction, so a crash frees it with the connection), and which keeps the
  // event that holds the key between its attempts (`live_event`), the key's
  // dead letter under onDeadLetter 'block' and its newest handled createdAt.
  (s) => `
CREATE SEQUENCE ${s}.events_order_seq;
ALTER TABLE ${s}.events ADD COLUMN ordering_key text, ADD COLUMN created_at_ms bigint, ADD COLUMN order_seq bigint;
CREATE INDEX events_ordering_head ON ${s}.events (ordering_key, created_at_ms, order_seq) WHERE state = 'pending' AND ordering_key IS NOT NULL;
CREATE TABLE ${s}.ordering_keys (
  key text PRIMARY KEY,
  live_event text,
  blocked_event text,
  blocked_at bigint,
  newest_handled_ms bigint,
  updated_at bigint
);`,
  // The event record (event-record.ts): `stale`, whether an ordered event's
  // handlers were told `ordering.stale` (written as its attempt ends; NULL for
  // an unordered event, or one not run yet), and `skipped`, 'stale' when
  // `ordering.skipStale` finished it without running. Nullable, no default: no
  // row is rewritten.
  (s) => `
ALTER TABLE ${s}.events ADD COLUMN stale boolean, ADD COLUMN skipped text CHECK (skipped IN ('stale'));`,
  // Flow control's waits (core/flow/waits.ts): a run put off by a pause or for
  // want of a slot waits long, and a resume or a slot's release makes it due
  // again, found by `wait_reason` and `wait_handler` (the handler's name)
  // through `events_waiting`. Asked again at the old short intervals instead,
  // a paused backlog of a million was a million row writes a second.
  (s) => `
ALTER TABLE ${s}.events ADD COLUMN wait_reason text, ADD COLUMN wait_handler text;
CREATE INDEX events_waiting ON ${s}.events (wait_reason, wait_handler, next_attempt_at) WHERE state = 'pending' AND wait_reason IS NOT NULL;`,
  // Ordering's two statements of each batch, as functions: PL/pgSQL keeps a
  // plan for each of their statements in the session, where the same SQL sent
  // as text was planned anew for every batch (0.3 ms a claim; planning was about
  // 40 % of what ordering added to Postgres's work in a drain). A function, not a prepared
  // statement: pgbouncer in transaction mode hands a session's prepared
  // statements to other clients; a function is the schema's, on every session.
  (s) => orderingFunctions(s)
]

/**
 * Version 6 (above), as released; a change to either function is a new version.
 * `sir_claim_ordered` is the worker's claim with ordering on (queries.ts,
 * ordering-sql.ts say why each condition is written as it is); `sir_keys_moved_on`
 * the batch's commit for ordered events: the handled keys' newest createdAt and
 * release, then the next head of each released key (after the events' own
 * updates, earlier in the transaction, so a finished head is not read again).
 * Their plans are made once per session and kept (generic): a plan made while
 * the table was empty read it whole for `id = ANY (ids)`, and kept doing so
 * through a burst until statistics changed. Every statement here has an index
 * path, so `enable_seqscan = off` keeps each plan on it, whatever the table held.
 */
function orderingFunctions (s: string): string {
  const head = (key: string, columns: string): string => `SELECT ${columns} FROM ${s}.events o WHERE o.ordering_key = ${key} AND o.state = 'pending' ORDER BY o.created_at_ms, o.order_seq LIMIT 1`
  return `
CREATE FUNCTION ${s}.sir_claim_ordered (ids text[], now_ms bigint)
RETURNS TABLE (id text, type text, body text, state text, received_at bigint, last_error text, finished_at bigint, started integer,
  flow jsonb, succeeded text[], ordering_key text, created_at_ms bigint, order_seq bigint, newest_handled_ms bigint)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $sir$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  SELECT e.id, e.type, e.body, e.state, e.received_at, e.last_error, e.finished_at, coalesce(a.started, 0),
    e.flow, coalesce((SELECT array_agg(h.handler) FROM ${s}.handled h WHERE h.event_id = e.id), '{}'),
    e.ordering_key, e.created_at_ms, e.order_seq, taken.newest_handled_ms
  FROM ${s}.events e
  LEFT JOIN LATERAL (
    SELECT k.newest_handled_ms, true AS ok FROM ${s}.ordering_keys k
    WHERE k.key = e.ordering_key AND k.blocked_event IS NULL
      AND (k.live_event = e.id OR (k.live_event IS NULL AND e.id = (${head('e.ordering_key', 'o.id')})))
    FOR NO KEY UPDATE SKIP LOCKED) taken ON true
  LEFT JOIN ${s}.attempts a ON a.event_id = e.id
  WHERE e.id = ANY (ids) AND coalesce(e.state, '') = 'pending' AND e.next_attempt_at + 0 <= now_ms
    AND (e.ordering_key IS NULL OR taken.ok)
  FOR NO KEY UPDATE OF e SKIP LOCKED;
END
$sir$;
CREATE FUNCTION ${s}.sir_keys_moved_on (handled_keys text[], handled_created bigint[], now_ms bigint, released text[])
RETURNS TABLE (id text, next_attempt_at bigint)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $sir$
#variable_conflict use_column
BEGIN
  -- One key at a time, by its primary key: as one statement joined to the
  -- arrays, the kept (generic) plan read the keys through a bitmap and a hash,
  -- three times as long as these lookups.
  FOR i IN 1 .. coalesce(cardinality(handled_keys), 0) LOOP
    UPDATE ${s}.ordering_keys SET newest_handled_ms = greatest(newest_handled_ms, handled_created[i]), updated_at = now_ms, live_event = NULL
    WHERE key = handled_keys[i];
  END LOOP;
  RETURN QUERY
  SELECT h.id, h.next_attempt_at FROM unnest(released) AS r (key)
  CROSS JOIN LATERAL (${head('r.key', 'o.id, o.next_attempt_at')}) h;
END
$sir$;`
}

export const SCHEMA_VERSION = migrations.length

export class SchemaError extends Error {
  constructor (message: string) {
    super(`sir-webhooks: ${message}`)
    this.name = 'SchemaError'
  }
}

/** The schema name as SQL: validated by the options to plain lower-case letters, digits and `_`, quoted anyway. */
export function quoted (schema: string): string {
  return `"${schema.replaceAll('"', '""')}"`
}

function preamble (s: string): string {
  return `CREATE SCHEMA IF NOT EXISTS ${s};
CREATE TABLE IF NOT EXISTS ${s}.migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());`
}

/**
 * The SQL that brings a schema from `fromVersion` (0: nothing there yet) to this
 * version, for teams that run migrations themselves.
 */
export function migrationSql (schema: string, fromVersion = 0): string {
  // Checked here too: the SQL is printed for any name given, and a function's body is quoted text.
  schemaName(schema)
  const s = quoted(schema)
  const steps = migrations.slice(fromVersion).map((migration, index) => {
    const version = fromVersion + index + 1
    return `-- version ${version}${migration(s)}\nINSERT INTO ${s}.migrations (version) VALUES (${version});`
  })
  return `-- sir-webhooks Postgres inbox, schema version ${fromVersion} to ${SCHEMA_VERSION}\nBEGIN;\n${preamble(s)}\n${steps.join('\n')}\nCOMMIT;\n`
}

async function currentVersion (client: ClientBase, schema: string): Promise<number | undefined> {
  const { rows } = await client.query<{ exists: boolean }>(
    "SELECT to_regclass($1) IS NOT NULL AS exists", [`${quoted(schema)}.migrations`])
  if (rows[0]?.exists !== true) return undefined
  const version = await client.query<{ version: number | null }>(`SELECT max(version) AS version FROM ${quoted(schema)}.migrations`)
  return version.rows[0]?.version ?? 0
}

function tooNew (schema: string, version: number): SchemaError {
  return new SchemaError(`the tables in schema "${schema}" are at version ${version}, written by a newer sir-webhooks; this one knows version ${SCHEMA_VERSION}`)
}

/**
 * Brings the schema to this version in one transaction under an advisory lock,
 * so that many instances starting at once apply each migration once: the
 * others wait for the lock, then find nothing left to do.
 */
export async function migrate (client: ClientBase, schema: string): Promise<void> {
  const s = quoted(schema)
  await client.query('BEGIN')
  try {
    await client.query("SELECT pg_advisory_xact_lock(hashtextextended('sir-webhooks:' || $1, 0))", [schema])
    await client.query(preamble(s))
    const version = await currentVersion(client, schema) ?? 0
    if (version > SCHEMA_VERSION) throw tooNew(schema, version)
    for (let next = version + 1; next <= SCHEMA_VERSION; next++) {
      await client.query(migrations[next - 1]!(s))
      await client.query(`INSERT INTO ${s}.migrations (version) VALUES ($1)`, [next])
    }
    await client.query('COMMIT')
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {})
    throw error
  }
}

/** With `migrate: false`: the tables must already be at this version. */
export async function checkSchema (client: ClientBase, schema: string): Promise<void> {
  const version = await currentVersion(client, schema)
  if (version === SCHEMA_VERSION) return
  if (version !== undefined && version > SCHEMA_VERSION) throw tooNew(schema, version)
  throw new SchemaError(`the tables in schema "${schema}" are ${version === undefined ? 'missing' : `at version ${version}`}, this sir-webhooks needs version ${SCHEMA_VERSION}: apply the SQL printed by \`sir-webhooks migrate --print --schema ${schema}\`, or leave "migrate" on`)
}
