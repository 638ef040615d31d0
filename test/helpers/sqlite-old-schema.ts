import type Database from 'better-sqlite3'

/** The columns `sir_webhook_events` had at each older schema version (src/sqlite/schema.ts says what each added). */
const COLUMNS_BY_VERSION: Record<2 | 3 | 4, string> = {
  2: `id TEXT PRIMARY KEY, type TEXT NOT NULL, event TEXT NOT NULL, body BLOB,
    state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'dead')), received_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL, lease_owner TEXT, lease_until INTEGER,
    succeeded TEXT NOT NULL DEFAULT '[]', last_error TEXT, finished_at INTEGER`,
  3: 'flow TEXT, attempt_log TEXT, wait_reason TEXT, wait_handler TEXT',
  4: 'ordering_key TEXT, created_at_ms INTEGER, holds_key INTEGER, skipped TEXT'
}

/**
 * The events table as a file of schema `version` had it, in WAL mode, marked with
 * that version: what the upgrade tests open with the current code. Tables and
 * indexes of that version beyond the events table are the caller's to add.
 */
export function createOldEventsTable (db: Database.Database, version: 2 | 3 | 4): void {
  db.pragma('journal_mode = WAL')
  const columns = ([2, 3, 4] as const).filter((at) => at <= version).map((at) => COLUMNS_BY_VERSION[at]).join(', ')
  db.exec(`CREATE TABLE sir_webhook_events (${columns}); PRAGMA user_version = ${version}`)
}
