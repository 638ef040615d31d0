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
 * the option write nothing more. `key_states` is each key's events by state and
 * createdAt: its pending part is the key's line (the head is its first entry),
 * and its done part answers the key's newest handled createdAt (the last entry),
 * kept as long as the done events are (`retentionSeconds`, the dedupe window).
 * An outcome moves the event's entry from one part to the other, next to it in
 * the index, which is why schema 6 dropped the table that kept the newest per
 * key: one upsert and two more pages written per event.
 */
const createOrderingTablesSql = `
DROP INDEX IF EXISTS sir_webhook_events_key_line;
DROP TABLE IF EXISTS sir_webhook_ordering_newest;
CREATE INDEX IF NOT EXISTS sir_webhook_events_key_states ON sir_webhook_events (ordering_key, state, created_at_ms) WHERE ordering_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS sir_webhook_events_key_holder ON sir_webhook_events (ordering_key) WHERE holds_key = 1;
`

/** Run inside the migration's transaction, after the event columns exist. */
export function createOrderingTables (db: BetterSqlite3.Database): void {
  db.exec(createOrderingTablesSql)
}

/**
 * The newest createdAt of a key's events handled to completion (done: handled,
 * or skipped as stale, which is older). A dead letter is not handled; a done
 * event taken back by a replay counts again once its new run is done. Given the
 * key as `key`, a column or a parameter.
 */
export const newestOfKey = (key: string): string => `(SELECT n.created_at_ms FROM sir_webhook_events n INDEXED BY sir_webhook_events_key_states
  WHERE n.ordering_key = ${key} AND n.state = 'done' ORDER BY n.created_at_ms DESC LIMIT 1)`

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
 * The head is read as the first entry of the key's line (one index seek), not as
 * "no older pending event": SQLite cannot seek on that OR, and walked the whole
 * line for each candidate, so a key with n waiting events cost n steps a claim.
 */
export const MAY_TAKE_KEY = `(e.ordering_key IS NULL OR e.holds_key = 1 OR (@takeKeys = 1
  AND NOT EXISTS (SELECT 1 FROM sir_webhook_events h INDEXED BY sir_webhook_events_key_holder WHERE h.ordering_key = e.ordering_key AND h.holds_key = 1)
  AND e.rowid = (SELECT o.rowid FROM sir_webhook_events o INDEXED BY sir_webhook_events_key_states
    WHERE o.ordering_key = e.ordering_key AND o.state = 'pending'
    ORDER BY o.created_at_ms, o.rowid LIMIT 1)))`

type Statement<Bind extends unknown[], Result = unknown> = BetterSqlite3.Statement<Bind, Result>

export interface OrderingStatements {
  newest: Statement<[string], number | null>
  hold: Statement<[IdKey]>
  unblock: Statement<[{ key: string }]>
  blocked: Statement<[], { key: string, id: IdKey, since: number }>
  waitingKeys: Statement<[], number>
  blockedKeys: Statement<[], number>
}

export function prepareOrdering (db: BetterSqlite3.Database): OrderingStatements {
  return {
    newest: db.prepare<[string], number | null>(`SELECT ${newestOfKey('?')}`).pluck(),
    hold: db.prepare<[IdKey]>('UPDATE sir_webhook_events SET holds_key = 1 WHERE id = ? AND ordering_key IS NOT NULL'),
    unblock: db.prepare<[{ key: string }]>(
      "UPDATE sir_webhook_events INDEXED BY sir_webhook_events_key_holder SET holds_key = NULL WHERE ordering_key = @key AND holds_key = 1 AND state = 'dead'"
    ),
    blocked: db.prepare<[], { key: string, id: IdKey, since: number }>(
      "SELECT ordering_key AS key, id, finished_at AS since FROM sir_webhook_events INDEXED BY sir_webhook_events_key_holder WHERE holds_key = 1 AND state = 'dead' ORDER BY finished_at, ordering_key"
    ),
    // Keys with an event that does not hold its key: behind a run, a hold or a block.
    waitingKeys: db.prepare<[], number>(
      "SELECT count(DISTINCT ordering_key) FROM sir_webhook_events INDEXED BY sir_webhook_events_key_states WHERE ordering_key IS NOT NULL AND state = 'pending' AND holds_key IS NULL"
    ).pluck(),
    blockedKeys: db.prepare<[], number>(
      "SELECT count(*) FROM sir_webhook_events INDEXED BY sir_webhook_events_key_holder WHERE holds_key = 1 AND state = 'dead'"
    ).pluck()
  }
}
