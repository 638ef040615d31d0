import type BetterSqlite3 from 'better-sqlite3'

export const SCHEMA_VERSION = 1

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
  state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'dead')),
  received_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  lease_owner TEXT,
  lease_until INTEGER,
  succeeded TEXT NOT NULL DEFAULT '[]',
  last_error TEXT,
  finished_at INTEGER
);
CREATE INDEX IF NOT EXISTS sir_webhook_events_due ON sir_webhook_events (state, next_attempt_at);
CREATE INDEX IF NOT EXISTS sir_webhook_events_finished ON sir_webhook_events (state, finished_at);
`

export interface EventRow {
  id: string
  type: string
  event: string
  state: 'pending' | 'done' | 'dead'
  received_at: number
  attempts: number
  next_attempt_at: number
  lease_owner: string | null
  lease_until: number | null
  succeeded: string
  last_error: string | null
  finished_at: number | null
}

type Statement<Bind extends unknown[], Result = unknown> = BetterSqlite3.Statement<Bind, Result>
type AcceptRow = { id: string, type: string, event: string, receivedAt: number }
type Owned = { id: string, owner: string }

export interface Statements {
  exists: Statement<[string], 1>
  countPending: Statement<[], number>
  countByState: Statement<[], { state: 'pending' | 'done' | 'dead', count: number }>
  insert: Statement<[AcceptRow]>
  claim: Statement<[{ owner: string, now: number, leaseUntil: number, limit: number, running: string }], EventRow>
  renewLeases: Statement<[{ owner: string, leaseUntil: number, running: string }]>
  releaseLeases: Statement<[{ owner: string, running: string }]>
  expireLease: Statement<[Owned & { now: number }]>
  finish: Statement<[Owned & { state: 'done' | 'dead', now: number, succeeded: string, lastError: string | null }]>
  retryLater: Statement<[Owned & { nextAttemptAt: number, succeeded: string, lastError: string }]>
  get: Statement<[string], EventRow>
  deadLetters: Statement<[number], EventRow>
  redrive: Statement<[{ id: string, now: number }]>
  purge: Statement<[{ state: 'done' | 'dead', before: number }]>
  countPurgeable: Statement<[{ state: 'done' | 'dead', before: number }], number>
  leaseOwners: Statement<[{ now: number }], string>
  releaseOwner: Statement<[{ owner: string }]>
}

export function openSchema (db: BetterSqlite3.Database, busyTimeoutMs: number): Statements {
  // WAL lets handlers' reads and the receiver's writes proceed side by side;
  // synchronous=FULL fsyncs the WAL on every commit, so a 2xx is sent only for
  // an event that survives a power cut, not just a process crash.
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = FULL')
  // How long one attempt at the write lock may block the event loop; the rest of
  // the wait, up to acceptTimeoutMs, is spent in asynchronous retries (group-commit.ts).
  db.pragma(`busy_timeout = ${busyTimeoutMs}`)
  db.exec(createTable)
  const version = db.pragma('user_version', { simple: true }) as number
  if (version > SCHEMA_VERSION) {
    throw new Error(`sir-webhooks: the inbox database was written by a newer sir-webhooks (schema ${version}, this one knows ${SCHEMA_VERSION})`)
  }
  if (version < SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`)
  return prepare(db)
}

function prepare (db: BetterSqlite3.Database): Statements {
  return {
    exists: db.prepare<[string], 1>('SELECT 1 FROM sir_webhook_events WHERE id = ?').pluck(),
    countPending: db.prepare<[], number>("SELECT count(*) FROM sir_webhook_events WHERE state = 'pending'").pluck(),
    countByState: db.prepare<[], { state: 'pending' | 'done' | 'dead', count: number }>('SELECT state, count(*) AS count FROM sir_webhook_events GROUP BY state'),
    insert: db.prepare<[{ id: string, type: string, event: string, receivedAt: number }]>(
      "INSERT INTO sir_webhook_events (id, type, event, state, received_at, next_attempt_at) VALUES (@id, @type, @event, 'pending', @receivedAt, @receivedAt)"
    ),
    // @running: a JSON array of the ids this process is running. Our own lease can
    // lapse while a handler blocks the event loop; claiming such a row again would
    // count an attempt that never runs.
    claim: db.prepare<[{ owner: string, now: number, leaseUntil: number, limit: number, running: string }], EventRow>(`
      UPDATE sir_webhook_events SET attempts = attempts + 1, lease_owner = @owner, lease_until = @leaseUntil
      WHERE id IN (
        SELECT id FROM sir_webhook_events
        WHERE state = 'pending' AND next_attempt_at <= @now AND (lease_until IS NULL OR lease_until <= @now)
          AND id NOT IN (SELECT value FROM json_each(@running))
        ORDER BY next_attempt_at LIMIT @limit
      )
      RETURNING *`),
    // Only rows still running here: a row whose outcome write failed is owned by
    // no run, and renewing it would keep it from every process for good.
    renewLeases: db.prepare<[{ owner: string, leaseUntil: number, running: string }]>(
      "UPDATE sir_webhook_events SET lease_until = @leaseUntil WHERE lease_owner = @owner AND state = 'pending' AND id IN (SELECT value FROM json_each(@running))"
    ),
    // On close: rows of ours that no handler is running go back to the queue now.
    // Rows still running keep their lease until it expires, or another process
    // would start them while this one's handlers are still at work.
    releaseLeases: db.prepare<[{ owner: string, running: string }]>(
      "UPDATE sir_webhook_events SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = @owner AND state = 'pending' AND id NOT IN (SELECT value FROM json_each(@running))"
    ),
    // After a failed outcome write: the row can be claimed again at once instead of after leaseMs.
    expireLease: db.prepare<[{ id: string, owner: string, now: number }]>(
      "UPDATE sir_webhook_events SET lease_until = @now WHERE id = @id AND lease_owner = @owner AND state = 'pending'"
    ),
    finish: db.prepare<[{ id: string, owner: string, state: 'done' | 'dead', now: number, succeeded: string, lastError: string | null }]>(`
      UPDATE sir_webhook_events
      SET state = @state, finished_at = @now, succeeded = @succeeded, last_error = coalesce(@lastError, last_error), lease_owner = NULL, lease_until = NULL
      WHERE id = @id AND lease_owner = @owner AND state = 'pending'`),
    retryLater: db.prepare<[{ id: string, owner: string, nextAttemptAt: number, succeeded: string, lastError: string }]>(`
      UPDATE sir_webhook_events
      SET next_attempt_at = @nextAttemptAt, succeeded = @succeeded, last_error = @lastError, lease_owner = NULL, lease_until = NULL
      WHERE id = @id AND lease_owner = @owner AND state = 'pending'`),
    get: db.prepare<[string], EventRow>('SELECT * FROM sir_webhook_events WHERE id = ?'),
    deadLetters: db.prepare<[number], EventRow>("SELECT * FROM sir_webhook_events WHERE state = 'dead' ORDER BY finished_at, id LIMIT ?"),
    redrive: db.prepare<[{ id: string, now: number }]>(`
      UPDATE sir_webhook_events
      SET state = 'pending', attempts = 0, next_attempt_at = @now, finished_at = NULL, lease_owner = NULL, lease_until = NULL
      WHERE id = @id AND state = 'dead'`),
    purge: db.prepare<[{ state: 'done' | 'dead', before: number }]>('DELETE FROM sir_webhook_events WHERE state = @state AND finished_at < @before'),
    countPurgeable: db.prepare<[{ state: 'done' | 'dead', before: number }], number>('SELECT count(*) FROM sir_webhook_events WHERE state = @state AND finished_at < @before').pluck(),
    leaseOwners: db.prepare<[{ now: number }], string>(
      "SELECT DISTINCT lease_owner FROM sir_webhook_events WHERE state = 'pending' AND lease_owner IS NOT NULL AND lease_until > @now"
    ).pluck(),
    // A dead predecessor's events: free at once. Their attempts stay counted.
    releaseOwner: db.prepare<[{ owner: string }]>(
      "UPDATE sir_webhook_events SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = @owner AND state = 'pending'"
    )
  }
}
