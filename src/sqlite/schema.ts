import type BetterSqlite3 from 'better-sqlite3'
import { createFlowTables, FLOW_EVENT_COLUMNS, prepareFlow, type FlowStatements } from './flow-schema.js'
import { createOrderingTables, MAY_TAKE_KEY, newestOfKey, ORDERING_EVENT_COLUMNS, prepareOrdering, type OrderingStatements } from './ordering-schema.js'
import type { IdKey } from './ids.js'
import { RECORD_EVENT_COLUMNS } from './record-schema.js'

/**
 * 2: `body` holds the exact bytes received (rows of schema 1 keep their event in
 * `event`), and ids that are not well-formed UTF-16 are stored as BLOBs (ids.ts).
 * 3: flow control (flow-schema.ts): an event's flow record, attempt log and what
 * it waits for, and the tables of tokens, pauses and run slots.
 * 4: ordering (ordering-schema.ts): an event's key, createdAt and whether it
 * holds its key, and the newest handled createdAt per key.
 * 5: the event's record (record-schema.ts): whether its handlers were told `stale`.
 * 6: the key's newest handled createdAt is read from its done events, through one
 * index that also holds its line (ordering-schema.ts); the table that kept it goes.
 */
export const SCHEMA_VERSION = 6

/**
 * One row per event id: the id is the primary key, so the row that queues an
 * event is also the row that deduplicates it, written in one transaction.
 * Times are milliseconds since the epoch on the receiver's clock.
 */
const createTable = `
CREATE TABLE IF NOT EXISTS sir_webhook_events (
  id TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  event TEXT NOT NULL,
  body BLOB,
  state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'dead')),
  received_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  lease_owner TEXT,
  lease_until INTEGER,
  succeeded TEXT NOT NULL DEFAULT '[]',
  last_error TEXT,
  finished_at INTEGER,
  flow TEXT,
  attempt_log TEXT,
  wait_reason TEXT,
  wait_handler TEXT,
  ordering_key TEXT,
  created_at_ms INTEGER,
  holds_key INTEGER,
  skipped TEXT,
  stale INTEGER
);
`

const createIndexes = `
CREATE INDEX IF NOT EXISTS sir_webhook_events_due ON sir_webhook_events (state, next_attempt_at);
CREATE INDEX IF NOT EXISTS sir_webhook_events_finished ON sir_webhook_events (state, finished_at);
CREATE INDEX IF NOT EXISTS sir_webhook_events_received ON sir_webhook_events (received_at);
CREATE INDEX IF NOT EXISTS sir_webhook_events_pending_received ON sir_webhook_events (received_at) WHERE state = 'pending';
`

export interface EventRow {
  /** Text, or a BLOB for an id that is not well-formed UTF-16: bind it back as it is. */
  id: IdKey
  type: string
  /** The event as JSON text in rows written before schema 2; empty since, the body holding it. */
  event: string
  /** The body exactly as received; null in rows written before schema 2. */
  body: Buffer | null
  state: 'pending' | 'done' | 'dead'
  received_at: number
  attempts: number
  next_attempt_at: number
  lease_owner: string | null
  lease_until: number | null
  succeeded: string
  last_error: string | null
  finished_at: number | null
  /** RetryLater records and reserved tokens by handler key (FlowCarry, as JSON); null when none. */
  flow: string | null
  /** Failed and deferred handler runs (AttemptRecord with `at` in ms, as JSON), the newest 50; null when none. */
  attempt_log: string | null
  /** Why a deferred event waits (`paused`, `concurrency`…) and for which handler: what resume() and a freed slot wake. */
  wait_reason: string | null
  wait_handler: string | null
  /** The event's ordering key, when the receiver has the `ordering` option and gave it one; null otherwise. */
  ordering_key: string | null
  /** Its `createdAt` in ms (the acceptance time where the sender's does not parse), for its place in its key's line. */
  created_at_ms: number | null
  /** 1 while it holds its key, and on a dead event that blocks its key. */
  holds_key: number | null
  /** `stale`: done without running (`ordering.skipStale`). */
  skipped: string | null
  /** 1: its handlers were told `ordering.stale`; 0: told not; null: unordered, or no attempt ended yet (record-schema.ts). */
  stale: number | null
  /** From the claim only: the key's newest handled createdAt when it was claimed (it cannot move while the event holds the key). */
  newest_ms?: number | null
}

type Statement<Bind extends unknown[], Result = unknown> = BetterSqlite3.Statement<Bind, Result>
type AcceptRow = { id: IdKey, type: string, body: Buffer, receivedAt: number, orderingKey: string | null, createdAtMs: number | null, notBefore: number }
type Owned = { id: IdKey, owner: string }
/** What the attempt's handlers were told (record-schema.ts): 1 stale, 0 not, null unordered (the column keeps what it had). */
export type Stale = 0 | 1 | null
/** The ids a process is running, as ids.ts's `idLists` gives them. */
type Running = { running: string, runningBlobs: string }

export interface Statements {
  storedBody: Statement<[IdKey], { body: Buffer | null }>
  countPending: Statement<[], number>
  countByState: Statement<[], { state: 'pending' | 'done' | 'dead', count: number }>
  insert: Statement<[AcceptRow]>
  claim: Statement<[Running & { owner: string, now: number, leaseUntil: number, limit: number, takeKeys: 0 | 1 }], EventRow>
  renewLeases: Statement<[Running & { owner: string, leaseUntil: number }]>
  releaseLeases: Statement<[Running & { owner: string }]>
  expireLease: Statement<[Owned & { now: number }]>
  finish: Statement<[Owned & { state: 'done' | 'dead', now: number, succeeded: string, lastError: string | null, attemptLog: string | null, skipped: string | null, stale: Stale }]>
  retryLater: Statement<[Owned & { nextAttemptAt: number, succeeded: string, lastError: string, flow: string | null, attemptLog: string | null, stale: Stale }]>
  defer: Statement<[Owned & Deferred]>
  finishAfterLeaseLost: Statement<[{ id: IdKey, now: number, succeeded: string, note: string, stale: Stale }]>
  get: Statement<[IdKey], EventRow>
  deadLetters: Statement<[number], EventRow>
  redrive: Statement<[{ id: IdKey, now: number }]>
  purge: Statement<[{ state: 'done' | 'dead', before: number }]>
  countPurgeable: Statement<[{ state: 'done' | 'dead', before: number }], number>
  leaseOwners: Statement<[{ now: number }], string>
  releaseOwner: Statement<[{ owner: string }]>
  oldestPending: Statement<[], number | null>
  flow: FlowStatements
  ordering: OrderingStatements
}

/** What a deferral writes: the event waits until `nextAttemptAt` with no attempt used. */
export interface Deferred {
  nextAttemptAt: number
  succeeded: string
  flow: string | null
  attemptLog: string | null
  waitReason: string
  waitHandler: string
}

export function openSchema (db: BetterSqlite3.Database): Statements {
  // WAL lets handlers' reads and the receiver's writes proceed side by side;
  // synchronous=FULL fsyncs the WAL on every commit, so a 2xx is sent only for
  // an event that survives a power cut, not just a process crash.
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = FULL')
  // The upgrade runs under the driver's own lock wait (5 s), lowered once the
  // file is open (open.ts): processes that open a new file at once each wait
  // for the first one's upgrade, instead of failing their start.
  migrate(db)
  return prepare(db)
}

function schemaVersion (db: BetterSqlite3.Database): number {
  const version = db.pragma('user_version', { simple: true }) as number
  if (version > SCHEMA_VERSION) {
    throw new Error(`sir-webhooks: the inbox database was written by a newer sir-webhooks (schema ${version}, this one knows ${SCHEMA_VERSION})`)
  }
  return version
}

/**
 * Creates the tables, or brings a schema 1 or 2 file up to date, in one write
 * transaction: two processes opening an old file at once upgrade it once.
 * Adding a nullable column rewrites no row, so the upgrade is instant; the one
 * new index over events (pending ones by received_at) is built once, from the
 * pending rows only.
 */
function migrate (db: BetterSqlite3.Database): void {
  if (schemaVersion(db) === SCHEMA_VERSION) return
  db.transaction(() => {
    if (schemaVersion(db) === SCHEMA_VERSION) return
    db.exec(createTable)
    const columns = db.prepare<[], string>("SELECT name FROM pragma_table_info('sir_webhook_events')").pluck().all()
    for (const [name, type] of [['body', 'BLOB'], ...FLOW_EVENT_COLUMNS, ...ORDERING_EVENT_COLUMNS, ...RECORD_EVENT_COLUMNS]) {
      if (!columns.includes(name)) db.exec(`ALTER TABLE sir_webhook_events ADD COLUMN ${name} ${type}`)
    }
    db.exec(createIndexes)
    createFlowTables(db)
    createOrderingTables(db)
    db.pragma(`user_version = ${SCHEMA_VERSION}`)
  }).immediate()
}

/** The ids of `Running`, in the form each is stored in. */
const running = 'SELECT value FROM json_each(@running) UNION ALL SELECT unhex(value) FROM json_each(@runningBlobs)'

function prepare (db: BetterSqlite3.Database): Statements {
  return {
    storedBody: db.prepare<[IdKey], { body: Buffer | null }>('SELECT body FROM sir_webhook_events WHERE id = ?'),
    countPending: db.prepare<[], number>("SELECT count(*) FROM sir_webhook_events WHERE state = 'pending'").pluck(),
    countByState: db.prepare<[], { state: 'pending' | 'done' | 'dead', count: number }>('SELECT state, count(*) AS count FROM sir_webhook_events GROUP BY state'),
    insert: db.prepare<[AcceptRow]>(
      // An ordered event's hold (`ordering.holdMs`) is its first next_attempt_at: the 2xx is not held, its run is.
      'INSERT INTO sir_webhook_events (id, type, event, body, state, received_at, next_attempt_at, ordering_key, created_at_ms) ' +
      "VALUES (@id, @type, '', @body, 'pending', @receivedAt, @notBefore, @orderingKey, @createdAtMs)"
    ),
    // @running, @runningBlobs: the ids this process is running (ids.ts). Our own lease can
    // lapse while a handler blocks the event loop; claiming such a row again would
    // count an attempt that never runs. An ordered event is claimed only as its
    // key's holder or head (MAY_TAKE_KEY), and the claim makes it the holder.
    claim: db.prepare<[Running & { owner: string, now: number, leaseUntil: number, limit: number, takeKeys: 0 | 1 }], EventRow>(`
      UPDATE sir_webhook_events SET attempts = attempts + 1, lease_owner = @owner, lease_until = @leaseUntil,
        holds_key = CASE WHEN ordering_key IS NULL THEN NULL ELSE 1 END
      WHERE id IN (
        SELECT e.id FROM sir_webhook_events e
        WHERE e.state = 'pending' AND e.next_attempt_at <= @now AND (e.lease_until IS NULL OR e.lease_until <= @now)
          AND e.id NOT IN (${running}) AND ${MAY_TAKE_KEY}
        ORDER BY e.next_attempt_at LIMIT @limit
      )
      RETURNING *, CASE WHEN ordering_key IS NULL THEN NULL ELSE ${newestOfKey('sir_webhook_events.ordering_key')} END AS newest_ms`),
    // Only rows still running here: a row whose outcome write failed is owned by
    // no run, and renewing it would keep it from every process for good.
    renewLeases: db.prepare<[Running & { owner: string, leaseUntil: number }]>(
      `UPDATE sir_webhook_events SET lease_until = @leaseUntil WHERE lease_owner = @owner AND state = 'pending' AND id IN (${running})`
    ),
    // On close: rows of ours that no handler is running go back to the queue now.
    // Rows still running keep their lease until it expires, or another process
    // would start them while this one's handlers are still at work.
    releaseLeases: db.prepare<[Running & { owner: string }]>(
      `UPDATE sir_webhook_events SET lease_owner = NULL, lease_until = NULL, stale = NULL WHERE lease_owner = @owner AND state = 'pending' AND id NOT IN (${running})`
    ),
    // After a failed outcome write: the row can be claimed again at once instead of after leaseMs.
    expireLease: db.prepare<[{ id: IdKey, owner: string, now: number }]>(
      "UPDATE sir_webhook_events SET lease_until = @now WHERE id = @id AND lease_owner = @owner AND state = 'pending'"
    ),
    // An ordered event's key is released here; a dead letter that blocks its key takes it back in the same transaction (ordering-store.ts).
    finish: db.prepare<[{ id: IdKey, owner: string, state: 'done' | 'dead', now: number, succeeded: string, lastError: string | null, attemptLog: string | null, skipped: string | null, stale: Stale }]>(`
      UPDATE sir_webhook_events
      SET state = @state, finished_at = @now, succeeded = @succeeded, last_error = coalesce(@lastError, last_error), lease_owner = NULL, lease_until = NULL,
        attempt_log = coalesce(@attemptLog, attempt_log), flow = NULL, wait_reason = NULL, wait_handler = NULL, skipped = @skipped,
        holds_key = NULL, stale = coalesce(@stale, stale)
      WHERE id = @id AND lease_owner = @owner AND state = 'pending'`),
    retryLater: db.prepare<[{ id: IdKey, owner: string, nextAttemptAt: number, succeeded: string, lastError: string, flow: string | null, attemptLog: string | null, stale: Stale }]>(`
      UPDATE sir_webhook_events
      SET next_attempt_at = @nextAttemptAt, succeeded = @succeeded, last_error = @lastError, lease_owner = NULL, lease_until = NULL,
        flow = @flow, attempt_log = coalesce(@attemptLog, attempt_log), wait_reason = NULL, wait_handler = NULL, stale = coalesce(@stale, stale)
      WHERE id = @id AND lease_owner = @owner AND state = 'pending'`),
    // A run put off by flow control: the claim's attempt is given back, so waiting
    // for a token, a slot or a partner's Retry-After uses none.
    defer: db.prepare<[{ id: IdKey, owner: string } & Deferred]>(`
      UPDATE sir_webhook_events
      SET attempts = max(0, attempts - 1), next_attempt_at = @nextAttemptAt, succeeded = @succeeded, flow = @flow,
        attempt_log = coalesce(@attemptLog, attempt_log), wait_reason = @waitReason, wait_handler = @waitHandler, lease_owner = NULL, lease_until = NULL,
        stale = NULL
      WHERE id = @id AND lease_owner = @owner AND state = 'pending'`),
    // A run that outlived its lease and succeeded: its handlers are done, wherever
    // else the event was started meanwhile. That run's own outcome write then finds
    // the row finished and changes nothing.
    finishAfterLeaseLost: db.prepare<[{ id: IdKey, now: number, succeeded: string, note: string, stale: Stale }]>(`
      UPDATE sir_webhook_events
      SET state = 'done', finished_at = @now, succeeded = @succeeded, last_error = @note, lease_owner = NULL, lease_until = NULL, holds_key = NULL,
        stale = coalesce(@stale, stale)
      WHERE id = @id AND state = 'pending'`),
    get: db.prepare<[IdKey], EventRow>('SELECT * FROM sir_webhook_events WHERE id = ?'),
    deadLetters: db.prepare<[number], EventRow>("SELECT * FROM sir_webhook_events WHERE state = 'dead' ORDER BY finished_at, id LIMIT ?"),
    redrive: db.prepare<[{ id: IdKey, now: number }]>(`
      UPDATE sir_webhook_events
      SET state = 'pending', attempts = 0, next_attempt_at = @now, finished_at = NULL, lease_owner = NULL, lease_until = NULL, flow = NULL
      WHERE id = @id AND state = 'dead'`),
    // A dead event that blocks its key is kept until it is re-driven or its key unblocked: purged, it would unblock the key unseen.
    purge: db.prepare<[{ state: 'done' | 'dead', before: number }]>('DELETE FROM sir_webhook_events WHERE state = @state AND finished_at < @before AND holds_key IS NULL'),
    countPurgeable: db.prepare<[{ state: 'done' | 'dead', before: number }], number>(
      'SELECT count(*) FROM sir_webhook_events WHERE state = @state AND finished_at < @before AND holds_key IS NULL'
    ).pluck(),
    leaseOwners: db.prepare<[{ now: number }], string>(
      "SELECT DISTINCT lease_owner FROM sir_webhook_events WHERE state = 'pending' AND lease_owner IS NOT NULL AND lease_until > @now"
    ).pluck(),
    // A dead predecessor's events: free at once. Their attempts stay counted.
    releaseOwner: db.prepare<[{ owner: string }]>(
      "UPDATE sir_webhook_events SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = @owner AND state = 'pending'"
    ),
    // One seek in the partial index of pending events by received_at (named: without statistics the planner picks another).
    oldestPending: db.prepare<[], number | null>("SELECT min(received_at) FROM sir_webhook_events INDEXED BY sir_webhook_events_pending_received WHERE state = 'pending'").pluck(),
    flow: prepareFlow(db),
    ordering: prepareOrdering(db)
  }
}
