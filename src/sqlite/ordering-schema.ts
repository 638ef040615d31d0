import type BetterSqlite3 from 'better-sqlite3'
import type { IdKey } from './ids.js'

/**
 * The columns schema 4 adds to `sir_webhook_events`, all nullable: an old file
 * upgrades without rewriting a row, and its events are unordered.
 * `ordering_key` and `created_at_ms`: the event's place in its key's line, set
 * at accept. `holds_key`: 1 while the event holds its key (from its first claim
 * until it is done, through retries and flow control's deferrals), and still 1 on
 * a dead event that blocks its key (`onDeadLetter: 'block'`). `skipped`: `stale`
 * for an event done without running (`skipStale`).
 */
export const ORDERING_EVENT_COLUMNS: ReadonlyArray<readonly [string, string]> = [
  ['ordering_key', 'TEXT'],
  ['created_at_ms', 'INTEGER'],
  ['holds_key', 'INTEGER'],
  ['skipped', 'TEXT']
]

/**
 * Both indexes are partial: an unordered event is in neither, so accepts without
 * the option write nothing more. The newest handled `createdAt` per key lives in
 * its own table, purged with the done events' retention.
 */
const createOrderingTablesSql = `
CREATE TABLE IF NOT EXISTS sir_webhook_ordering_newest (key TEXT PRIMARY KEY, newest_ms INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS sir_webhook_events_key_line ON sir_webhook_events (ordering_key, created_at_ms) WHERE state = 'pending' AND ordering_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS sir_webhook_events_key_holder ON sir_webhook_events (ordering_key) WHERE holds_key = 1;
`

/** Run inside the migration's transaction, after the event columns exist. */
export function createOrderingTables (db: BetterSqlite3.Database): void {
  db.exec(createOrderingTablesSql)
}

/**
 * The claim's condition for an ordered event: it holds its key already (a retry,
 * a deferral, a run whose process died), or no event holds the key (running,
 * between attempts, or dead and blocking it) and it is the head of the key's
 * line, the pending event with the oldest `created_at_ms`, then the oldest rowid
 * (acceptance order). Checked in the claim's own write transaction, so the file
 * lock makes "is the head and nobody holds the key" atomic across processes; a
 * key held by a crashed run frees with that run's lease, since the holder itself
 * is claimable once its lease has lapsed. `@takeKeys` 0: only holders; a claim
 * that shares its transaction with accepts takes no key (runner.ts says why).
 */
export const MAY_TAKE_KEY = `(e.ordering_key IS NULL OR e.holds_key = 1 OR (@takeKeys = 1
  AND NOT EXISTS (SELECT 1 FROM sir_webhook_events h INDEXED BY sir_webhook_events_key_holder WHERE h.ordering_key = e.ordering_key AND h.holds_key = 1)
  AND NOT EXISTS (SELECT 1 FROM sir_webhook_events o INDEXED BY sir_webhook_events_key_line
    WHERE o.ordering_key = e.ordering_key AND o.state = 'pending' AND o.ordering_key IS NOT NULL
      AND (o.created_at_ms < e.created_at_ms OR (o.created_at_ms = e.created_at_ms AND o.rowid < e.rowid)))))`

type Statement<Bind extends unknown[], Result = unknown> = BetterSqlite3.Statement<Bind, Result>

export interface OrderingStatements {
  newest: Statement<[string], number>
  remember: Statement<[{ key: string, createdAt: number, now: number }]>
  release: Statement<[IdKey]>
  hold: Statement<[IdKey]>
  unblock: Statement<[{ key: string }]>
  blocked: Statement<[], { key: string, id: IdKey, since: number }>
  waitingKeys: Statement<[], number>
  blockedKeys: Statement<[], number>
  forget: Statement<[{ before: number }]>
}

export function prepareOrdering (db: BetterSqlite3.Database): OrderingStatements {
  return {
    newest: db.prepare<[string], number>('SELECT newest_ms FROM sir_webhook_ordering_newest WHERE key = ?').pluck(),
    // The newest handled only moves forward.
    remember: db.prepare<[{ key: string, createdAt: number, now: number }]>(`
      INSERT INTO sir_webhook_ordering_newest (key, newest_ms, updated_at) VALUES (@key, @createdAt, @now)
      ON CONFLICT (key) DO UPDATE SET newest_ms = max(newest_ms, excluded.newest_ms), updated_at = excluded.updated_at`),
    release: db.prepare<[IdKey]>('UPDATE sir_webhook_events SET holds_key = NULL WHERE id = ? AND holds_key = 1'),
    hold: db.prepare<[IdKey]>('UPDATE sir_webhook_events SET holds_key = 1 WHERE id = ? AND ordering_key IS NOT NULL'),
    unblock: db.prepare<[{ key: string }]>(
      "UPDATE sir_webhook_events INDEXED BY sir_webhook_events_key_holder SET holds_key = NULL WHERE ordering_key = @key AND holds_key = 1 AND state = 'dead'"
    ),
    blocked: db.prepare<[], { key: string, id: IdKey, since: number }>(
      "SELECT ordering_key AS key, id, finished_at AS since FROM sir_webhook_events INDEXED BY sir_webhook_events_key_holder WHERE holds_key = 1 AND state = 'dead' ORDER BY finished_at, ordering_key"
    ),
    // Keys with an event that does not hold its key: behind a run, a hold or a block.
    waitingKeys: db.prepare<[], number>(
      "SELECT count(DISTINCT ordering_key) FROM sir_webhook_events INDEXED BY sir_webhook_events_key_line WHERE state = 'pending' AND ordering_key IS NOT NULL AND holds_key IS NULL"
    ).pluck(),
    blockedKeys: db.prepare<[], number>(
      "SELECT count(*) FROM sir_webhook_events INDEXED BY sir_webhook_events_key_holder WHERE holds_key = 1 AND state = 'dead'"
    ).pluck(),
    forget: db.prepare<[{ before: number }]>('DELETE FROM sir_webhook_ordering_newest WHERE updated_at < @before')
  }
}
