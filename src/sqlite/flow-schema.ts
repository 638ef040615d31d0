import type BetterSqlite3 from 'better-sqlite3'

/** The columns schema 3 adds to `sir_webhook_events`, all nullable: an old file upgrades without rewriting a row. */
export const FLOW_EVENT_COLUMNS: ReadonlyArray<readonly [string, string]> = [
  ['flow', 'TEXT'],
  ['attempt_log', 'TEXT'],
  ['wait_reason', 'TEXT'],
  ['wait_handler', 'TEXT']
]

/**
 * Flow control's state, shared by every process on the file: a token bucket per
 * handler, what is paused (`''` for every handler, as `pause()` without a name),
 * and one row per run of a handler with a `concurrency`, under a lease like an
 * event's so that a crashed process's runs stop counting once it lapses.
 * The index over waiting events holds only events deferred by flow control
 * (`wait_reason` is null otherwise), so accepts never write to it.
 */
const createFlowTablesSql = `
CREATE TABLE IF NOT EXISTS sir_webhook_flow_tokens (handler TEXT PRIMARY KEY, tokens REAL NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sir_webhook_flow_paused (handler TEXT PRIMARY KEY, since INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sir_webhook_flow_slots (id INTEGER PRIMARY KEY, handler TEXT NOT NULL, owner TEXT NOT NULL, lease_until INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS sir_webhook_flow_slots_handler ON sir_webhook_flow_slots (handler, lease_until);
CREATE INDEX IF NOT EXISTS sir_webhook_events_waiting ON sir_webhook_events (wait_reason, wait_handler, next_attempt_at) WHERE wait_reason IS NOT NULL;
`

/** Run inside the migration's transaction, after the event columns exist. */
export function createFlowTables (db: BetterSqlite3.Database): void {
  db.exec(createFlowTablesSql)
}

type Statement<Bind extends unknown[], Result = unknown> = BetterSqlite3.Statement<Bind, Result>

export interface FlowStatements {
  token: Statement<[string], { tokens: number, at: number }>
  setToken: Statement<[{ handler: string, tokens: number, at: number }]>
  paused: Statement<[], string>
  isPaused: Statement<[{ handler: string }], number>
  pause: Statement<[{ handler: string, now: number }]>
  unpause: Statement<[{ handler: string }]>
  unpauseAll: Statement<[]>
  wakePaused: Statement<[{ now: number }]>
  wakeConcurrency: Statement<[{ handler: string, now: number, limit: number }]>
  expireSlots: Statement<[{ handler: string, now: number }]>
  countSlots: Statement<[{ handler: string, now: number }], number>
  takeSlot: Statement<[{ handler: string, owner: string, leaseUntil: number }]>
  releaseSlot: Statement<[{ id: number, owner: string }]>
  renewSlots: Statement<[{ owner: string, ids: string, leaseUntil: number }]>
  slotOwners: Statement<[], string>
  releaseOwnerSlots: Statement<[{ owner: string }]>
}

export function prepareFlow (db: BetterSqlite3.Database): FlowStatements {
  return {
    token: db.prepare<[string], { tokens: number, at: number }>('SELECT tokens, at FROM sir_webhook_flow_tokens WHERE handler = ?'),
    setToken: db.prepare<[{ handler: string, tokens: number, at: number }]>(
      'INSERT INTO sir_webhook_flow_tokens (handler, tokens, at) VALUES (@handler, @tokens, @at) ON CONFLICT (handler) DO UPDATE SET tokens = excluded.tokens, at = excluded.at'
    ),
    paused: db.prepare<[], string>('SELECT handler FROM sir_webhook_flow_paused').pluck(),
    isPaused: db.prepare<[{ handler: string }], number>("SELECT count(*) FROM sir_webhook_flow_paused WHERE handler IN ('', @handler)").pluck(),
    pause: db.prepare<[{ handler: string, now: number }]>('INSERT OR IGNORE INTO sir_webhook_flow_paused (handler, since) VALUES (@handler, @now)'),
    unpause: db.prepare<[{ handler: string }]>('DELETE FROM sir_webhook_flow_paused WHERE handler = @handler'),
    unpauseAll: db.prepare<[]>('DELETE FROM sir_webhook_flow_paused'),
    // Runs put off by a pause wait long (no poll of a paused backlog); a resume makes them due now.
    // INDEXED BY: without statistics the planner takes the due index, a scan of the whole backlog.
    // Every paused wait, whichever handler resumed: a row records only its first
    // paused handler, and an event held by two paused handlers must be asked again
    // when either resumes. One still paused is put back by its next claim.
    wakePaused: db.prepare<[{ now: number }]>(`
      UPDATE sir_webhook_events INDEXED BY sir_webhook_events_waiting SET next_attempt_at = @now
      WHERE wait_reason = 'paused' AND state = 'pending' AND next_attempt_at > @now`),
    // A slot freed: the runs that waited longest for one are due now.
    wakeConcurrency: db.prepare<[{ handler: string, now: number, limit: number }]>(`
      UPDATE sir_webhook_events SET next_attempt_at = @now WHERE id IN (
        SELECT id FROM sir_webhook_events INDEXED BY sir_webhook_events_waiting
        WHERE wait_reason = 'concurrency' AND wait_handler = @handler AND state = 'pending' AND next_attempt_at > @now
        ORDER BY next_attempt_at LIMIT @limit)`),
    expireSlots: db.prepare<[{ handler: string, now: number }]>('DELETE FROM sir_webhook_flow_slots WHERE handler = @handler AND lease_until <= @now'),
    countSlots: db.prepare<[{ handler: string, now: number }], number>('SELECT count(*) FROM sir_webhook_flow_slots WHERE handler = @handler AND lease_until > @now').pluck(),
    takeSlot: db.prepare<[{ handler: string, owner: string, leaseUntil: number }]>('INSERT INTO sir_webhook_flow_slots (handler, owner, lease_until) VALUES (@handler, @owner, @leaseUntil)'),
    // By owner too: an id may be reused once a lapsed slot is expired, and a late release must not free another process's slot.
    releaseSlot: db.prepare<[{ id: number, owner: string }]>('DELETE FROM sir_webhook_flow_slots WHERE id = @id AND owner = @owner'),
    renewSlots: db.prepare<[{ owner: string, ids: string, leaseUntil: number }]>(
      'UPDATE sir_webhook_flow_slots SET lease_until = @leaseUntil WHERE owner = @owner AND id IN (SELECT value FROM json_each(@ids))'
    ),
    slotOwners: db.prepare<[], string>('SELECT DISTINCT owner FROM sir_webhook_flow_slots').pluck(),
    releaseOwnerSlots: db.prepare<[{ owner: string }]>('DELETE FROM sir_webhook_flow_slots WHERE owner = @owner')
  }
}
