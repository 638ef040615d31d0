/**
 * The column schema 5 adds to `sir_webhook_events`, nullable: an old file
 * upgrades without rewriting a row. `stale`: 1 when the event's handlers were
 * told `ordering.stale` (or it was skipped as stale), 0 when they were told it
 * was not, null for an unordered event or one whose attempt has not ended yet.
 * Written by the statement that ends an attempt (finish, retryLater), as on
 * Postgres: the claim reads the key's newest handled createdAt once, for the
 * handlers and this column both. A receiver without `ordering` on a file with
 * keyed rows tells its handlers nothing and writes null (the column keeps what
 * it had).
 */
export const RECORD_EVENT_COLUMNS: ReadonlyArray<readonly [string, string]> = [
  ['stale', 'INTEGER']
]
