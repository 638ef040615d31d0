/**
 * The column schema 5 adds to `sir_webhook_events`, nullable: an old file
 * upgrades without rewriting a row. `stale`: 1 when the event's handlers were
 * told `ordering.stale` (or it was skipped as stale), 0 when they were told it
 * was not, null for an unordered event or one not run yet.
 */
export const RECORD_EVENT_COLUMNS: ReadonlyArray<readonly [string, string]> = [
  ['stale', 'INTEGER']
]

/**
 * The claim's `stale`: what `ordered-run.ts` tells the handlers, written in the
 * claim that takes the key. The key's newest handled createdAt cannot move while
 * the event holds its key, so the value is the one every run of this turn is
 * told, and a re-drive's claim writes it afresh. `@ordered` 0 (a receiver
 * without `ordering` on a file with keyed rows): its handlers are told nothing,
 * so nothing is recorded either.
 */
export const STALE_AT_CLAIM = `stale = CASE WHEN @ordered = 1 AND ordering_key IS NOT NULL
  THEN coalesce((SELECT n.newest_ms > coalesce(sir_webhook_events.created_at_ms, sir_webhook_events.received_at)
    FROM sir_webhook_ordering_newest n WHERE n.key = sir_webhook_events.ordering_key), 0)
  ELSE stale END`
