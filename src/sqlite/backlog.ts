/** A full backlog is counted again at most this often: while full, every accept batch would otherwise count. */
const MIN_RECOUNT_MS = 100
/**
 * The timer's recount costs at most this share of the time: `count(*)` reads
 * every pending row's index entry, about 34 ms at a million pending.
 */
const RECOUNT_SHARE = 0.01

/**
 * The pending events in the file, held against the backlog bound without a
 * `count(*)` per accept batch. Counted at start and on a timer, kept current in
 * between by this process: its accepts add, its finished events subtract, both
 * inside their write transactions. Other processes sharing the file are not
 * seen between counts, so a count that says "full" is taken again (inside the
 * accept's write transaction, so exactly) before a delivery is refused. Before
 * this, every batch of accepts counted the pending rows: a few milliseconds of
 * blocked event loop per batch at 100 000 pending, 34 ms at a million.
 */
export class SqliteBacklog {
  readonly #countNow: () => number
  readonly #pollMs: number
  #count: number | undefined
  #countedAt = Number.NEGATIVE_INFINITY
  #countTookMs = 0

  constructor (countNow: () => number, pollMs: number) {
    this.#countNow = countNow
    this.#pollMs = pollMs
  }

  /** Pending events, as last counted and kept since. */
  get size (): number {
    return this.#count ?? this.recount()
  }

  /** Returns `events`, so that a write can count what it queued and answer with it in one expression. */
  added (events: number): number {
    if (this.#count !== undefined) this.#count += events
    return events
  }

  finished (events: number): void {
    if (this.#count !== undefined) this.#count = Math.max(0, this.#count - events)
  }

  /** Whether one more event fits under `limit`; call inside the accept's write transaction. */
  admits (limit: number): boolean {
    if (limit <= 0) return false
    if (this.size < limit) return true
    if (performance.now() - this.#countedAt < MIN_RECOUNT_MS) return false
    return this.recount() < limit
  }

  /** The timer's recount: catches other processes' work, as often as costs at most 1% of the time. */
  refreshIfDue (): void {
    const interval = Math.max(this.#pollMs, this.#countTookMs / RECOUNT_SHARE)
    if (performance.now() - this.#countedAt >= interval) this.recount()
  }

  recount (): number {
    const started = performance.now()
    const count = this.#countNow()
    this.#countedAt = performance.now()
    this.#countTookMs = this.#countedAt - started
    this.#count = count
    return count
  }

  /**
   * Resolves once no event in the file is pending (waiting, held, backing off or
   * behind its ordering key, in any process) and none runs here: `idle()`.
   * Polled, since other processes' writes send no signal.
   */
  async whenEmpty (running: () => number, pollMs: number): Promise<void> {
    while (this.recount() > 0 || running() > 0) await new Promise((resolve) => { setTimeout(resolve, pollMs) })
  }
}
