import type { Pool } from 'pg'
import type { WebhookLogger } from '../core/logger.js'
import type { Queries } from './queries.js'
import { redactedStoreError } from './store-errors.js'

/** A backlog at least this large is worth the planner knowing of. */
const MIN_PENDING = 1_000
/** Statistics are asked for again once the backlog has grown this many times since the last time. */
const GROWTH = 4
/** And at most this often, whatever the growth. */
const MIN_INTERVAL_MS = 10_000

/**
 * Keeps Postgres's statistics of the events table in step with a burst. The
 * planner reads how many events are pending from statistics that autovacuum
 * refreshes at most once a minute (`autovacuum_naptime`): for up to that minute
 * after a burst into a quiet table it believes a handful are, and looks for due
 * events by reading all of them before sorting (a bitmap scan). With ordering on,
 * that checks every pending event's key: 40–70 ms a scan with 10 000 pending,
 * where the index walk in due order stops at the 200 it wants (under 1 ms).
 *
 * So when the pending count has grown fourfold (and to at least 1 000) from the
 * lowest it was since this process last asked, and the planner's own estimate
 * of the pending events is under a quarter of it, it runs ANALYZE on the events
 * (and ordering keys) table: a sample of at most 30 000 rows, under a lock that
 * blocks no read or write. SKIP_LOCKED: a table being vacuumed is skipped, not
 * waited for, since a wait of `deadlock_timeout` makes Postgres cancel the
 * autovacuum, and bursts every few seconds would keep a large table from ever
 * finishing one. A role that does
 * not own the table gets a warning from Postgres, not an error, and autovacuum's
 * statistics as before; a failure is logged once.
 */
export class PlannerStats {
  readonly #pool: () => Promise<Pool>
  readonly #sql: Pick<Queries, 'analyzeEvents' | 'pendingEstimate'>
  readonly #logger: () => WebhookLogger | undefined
  /** The lowest pending count since the last ANALYZE asked for here (or since start). */
  #low = 0
  #lastAt = Number.NEGATIVE_INFINITY
  #running = false
  #warned = false

  constructor (pool: () => Promise<Pool>, sql: Pick<Queries, 'analyzeEvents' | 'pendingEstimate'>, logger: () => WebhookLogger | undefined) {
    this.#pool = pool
    this.#sql = sql
    this.#logger = logger
  }

  /** The backlog was counted: `pending` events. */
  counted (pending: number): void {
    this.#low = Math.min(this.#low, pending)
    // Told at every accept: the clock is read only once the counts say a burst may be on.
    if (this.#running || pending < MIN_PENDING || pending < GROWTH * this.#low) return
    const now = Date.now()
    if (now - this.#lastAt < MIN_INTERVAL_MS) return
    this.#running = true
    this.#lastAt = now
    this.#low = pending
    this.#analyzeUnlessKnown(pending).catch((error: unknown) => {
      if (this.#warned) return
      this.#warned = true
      this.#logger()?.warn({ err: redactedStoreError(error) }, 'the Postgres inbox could not ANALYZE its tables after a burst; scans for due events may be slow until autovacuum does')
    }).finally(() => { this.#running = false })
  }

  /**
   * Statistics may already know of the backlog: analyzed by autovacuum, by
   * another receiver on the schema, or by the process that took the burst and
   * stopped. A receiver that started onto a backlog of 60 000 ran a 270 ms
   * ANALYZE beside its first accepts, which it then answered in up to 90 ms.
   */
  async #analyzeUnlessKnown (pending: number): Promise<void> {
    const pool = await this.#pool()
    // The plan's row estimate of "pending": what the planner believes from the
    // statistics it has. Unread (an error), the tables are analyzed as before.
    const estimate = await pool.query<{ 'QUERY PLAN': Array<{ Plan: { 'Plan Rows': number } }> }>(this.#sql.pendingEstimate)
      .then(({ rows }) => rows[0]?.['QUERY PLAN'][0]?.Plan['Plan Rows'] ?? 0, () => 0)
    if (estimate * GROWTH >= pending) {
      // Growth is counted from what the planner believes, not from this count:
      // the next burst is judged against the statistics, not against a skip.
      this.#low = Math.min(this.#low, estimate)
      return
    }
    await pool.query(this.#sql.analyzeEvents)
  }
}
