// Ordering's state for the Postgres inbox, in the inbox's schema so that every
// receiver on it keeps one line per key. The work is in the worker's own SQL: an
// ordered event is stored with its key, createdAt and acceptance order by the
// accept's INSERT (its key row made in the same statement), and claimed only as
// the head of its key with its key's row locked FOR NO KEY UPDATE SKIP LOCKED in
// the transaction that runs it (queries.ts, ordering-sql.ts). That lock is the
// key's: held until the event's commit, so one run of a key at a time across
// every receiver, and freed with the connection when a process dies. The commit
// that finishes the event moves the key's newest handled createdAt or blocks the
// key (run-event.ts), so neither can be lost between the two.
import type { Pool } from 'pg'
import type { WebhookLogger } from '../core/logger.js'
import type { BlockedKey, OrderedEventRef, OrderingKeyCounts, OrderingStore, TakeAnswer } from '../core/ordering/store.js'
import { orderingQueriesFor, type OrderingQueries } from './ordering-sql.js'
import { quoted } from './schema.js'
import { redactedStoreError } from './store-errors.js'
import { storedKey } from './stored-text.js'

/** How long after a finished ordered event the counts are read again, at the soonest. */
const REFRESH_AFTER_MS = 100
/**
 * Reads are spaced at least this many times the last one's duration, up to
 * MAX_REFRESH_AFTER_MS: the read groups every pending ordered event, so it grows
 * with the backlog, and every 100 ms it took a fifth of Postgres's time while
 * 10 000 events drained. Spaced by its cost, it takes at most about 2 %.
 */
const SPACING_PER_READ = 50
const MAX_REFRESH_AFTER_MS = 5_000

export interface PostgresOrderingEnvironment {
  schema: string
  /** The inbox's pool (its running one, or one for queries before start). */
  pool (): Promise<Pool>
  /** Wakes every receiver on the schema: a key moved on. */
  wakeChannel: string
  /** The receiver's logger, once it has started the inbox. */
  logger (): WebhookLogger | undefined
}

export class PostgresOrderingStore implements OrderingStore {
  readonly scope = 'the Postgres schema'
  readonly sql: OrderingQueries
  readonly #env: PostgresOrderingEnvironment
  #counts: OrderingKeyCounts = { waiting: 0, blocked: 0 }
  #refreshing: Promise<void> | undefined
  #again = false
  #soon: NodeJS.Timeout | undefined
  #lastReadMs = 0

  constructor (env: PostgresOrderingEnvironment) {
    this.#env = env
    this.sql = orderingQueriesFor(env.schema)
  }

  /** Nothing to do here: the accept's INSERT stores the event's place in its key and makes the key's row, in its transaction. */
  enqueue (_ref: OrderedEventRef): void {}

  /**
   * What a claim would answer for this event now, read in a transaction of its
   * own and rolled back: the workers do not call it, their claim takes the key
   * (the key row's lock) in the transaction that then runs the event.
   */
  async take (ref: OrderedEventRef, now: number): Promise<TakeAnswer> {
    const client = await (await this.#env.pool()).connect()
    const s = quoted(this.#env.schema)
    try {
      await client.query('BEGIN')
      const key = await client.query<{ live_event: string | null, blocked_event: string | null, newest_handled_ms: string | null }>(
        `SELECT live_event, blocked_event, newest_handled_ms FROM ${s}.ordering_keys WHERE key = $1 FOR NO KEY UPDATE SKIP LOCKED`, [storedKey(ref.key)])
      const row = key.rows[0]
      if (row === undefined) return { taken: false, wait: 'busy' }
      if (row.blocked_event !== null) return { taken: false, wait: 'blocked' }
      if (row.live_event !== null && row.live_event !== storedKey(ref.id)) return { taken: false, wait: 'busy' }
      const head = await client.query<{ id: string, next_attempt_at: string }>(this.sql.nextHeads, [[storedKey(ref.key)]])
      const first = head.rows[0]
      if (row.live_event === null && first?.id !== storedKey(ref.id)) return { taken: false, wait: 'behind' }
      const due = Number(first?.next_attempt_at ?? 0)
      if (due > now) return { taken: false, wait: 'held', retryInMs: due - now }
      return { taken: true, newestHandledAt: row.newest_handled_ms === null ? undefined : Number(row.newest_handled_ms) }
    } finally {
      await client.query('ROLLBACK').catch(() => {})
      client.release()
    }
  }

  /** Written by the commit that finished the event (run-event.ts): the key's lock went with it. Counts are read again soon. */
  release (_ref: OrderedEventRef, _handledCreatedAt: number | undefined): void {
    this.refreshSoon()
  }

  /** Written by the commit that dead-lettered the event (run-event.ts). Counts are read again soon. */
  block (_ref: OrderedEventRef, _now: number): void {
    this.refreshSoon()
  }

  async unblock (key: string): Promise<boolean> {
    const pool = await this.#env.pool()
    const { rows } = await pool.query(`WITH moved AS (${this.sql.unblock}) SELECT key, pg_notify($2, '') FROM moved`, [key, this.#env.wakeChannel])
    this.refresh()
    return rows.length > 0
  }

  async blocked (): Promise<BlockedKey[]> {
    const { rows } = await (await this.#env.pool()).query<{ key: string, blocked_event: string, blocked_at: string }>(this.sql.blocked)
    return rows.map((row) => ({ key: row.key, eventId: row.blocked_event, since: new Date(Number(row.blocked_at)) }))
  }

  /** As last read: every poll, and after each run that finished an ordered event. */
  counts (): OrderingKeyCounts {
    return { ...this.#counts }
  }

  /** Reads the counts again: one read at a time, and one more if asked meanwhile. */
  refresh (): void {
    if (this.#refreshing !== undefined) {
      this.#again = true
      return
    }
    this.#refreshing = this.#read().catch((error: unknown) => {
      this.#env.logger()?.warn({ err: redactedStoreError(error) }, 'ordering could not count its keys in Postgres; stats() shows the last count')
    }).finally(() => {
      this.#refreshing = undefined
      if (this.#again) {
        this.#again = false
        this.refresh()
      }
    })
  }

  /** Resolves once a refresh under way is over (tests, close). */
  async settled (): Promise<void> {
    while (this.#refreshing !== undefined) await this.#refreshing
  }

  /**
   * Forgets keys idle since `cutoff` with nothing pending nor blocked: their
   * newest handled is kept as long as event ids are. An accept that committed an
   * event of a key while its row was deleted has the row made again here, at
   * once and at each purge, so its event is claimable.
   */
  async purge (cutoff: number): Promise<number> {
    const pool = await this.#env.pool()
    const { rowCount } = await pool.query(this.sql.purgeKeys, [cutoff])
    await pool.query(this.sql.healKeys)
    return rowCount ?? 0
  }

  /** The inbox's periodic purge: a failure is logged (redacted) and tried again at the next. */
  purgeQuietly (cutoff: number): void {
    this.purge(cutoff).catch((error: unknown) => {
      this.#env.logger()?.error({ err: redactedStoreError(error) }, 'the Postgres inbox could not forget idle ordering keys; it tries again at the next purge')
    })
  }

  /**
   * One read for the events accepted or finished within a while (REFRESH_AFTER_MS,
   * longer as the read gets slower): a read per event would group the pending
   * ordered events over and over under load.
   */
  refreshSoon (): void {
    if (this.#soon !== undefined) return
    const after = Math.min(MAX_REFRESH_AFTER_MS, Math.max(REFRESH_AFTER_MS, this.#lastReadMs * SPACING_PER_READ))
    this.#soon = setTimeout(() => {
      this.#soon = undefined
      this.refresh()
    }, after)
    this.#soon.unref()
  }

  /** Stops the pending read of the counts (the inbox's close). */
  close (): void {
    clearTimeout(this.#soon)
    this.#soon = undefined
  }

  async #read (): Promise<void> {
    const pool = await this.#env.pool()
    const started = performance.now()
    const { rows } = await pool.query<{ waiting: number, blocked: number }>(this.sql.counts)
    this.#lastReadMs = performance.now() - started
    this.#counts = { waiting: rows[0]?.waiting ?? 0, blocked: rows[0]?.blocked ?? 0 }
  }
}
