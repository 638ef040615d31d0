import { withDeadline } from '../core/timeouts.js'

/** A full inbox counts again at most this often: while full, every delivery would otherwise ask. */
const MIN_RECOUNT_MS = 100

/**
 * The pending events across every instance, held against the backlog bound
 * (`maxBacklog`, and `maxQueueSize` when set: core/backlog-bound.ts). The
 * count is taken from the table at start and at each poll, and kept current
 * in between with what this process knows: its accepts add, its finished
 * events (done or dead) subtract. Other instances' work is not seen between
 * polls, so a count that says "full" is taken again before a delivery is
 * refused. Before this, the count only grew between polls: a receiver that
 * kept up with its events refused deliveries with a tenth of the bound pending.
 */
/** What a count of the table says: pending events, and when the oldest of them was received. */
export interface BacklogCount {
  pending: number
  oldestReceivedAt: number | undefined
}

export class Backlog {
  readonly #countNow: () => Promise<BacklogCount>
  readonly #failed: (error: unknown) => void
  readonly #observe: (pending: number) => void
  #count = 0
  /** Accepts minus finishes here since the count in flight was sent: its result does not hold them all. */
  #sinceSent = 0
  #recount: Promise<void> | undefined
  #countedAt = Number.NEGATIVE_INFINITY
  #oldest: number | undefined

  /** `observe` is told the count as it grows here and at each count of the table (planner-stats.ts). */
  constructor (countNow: () => Promise<BacklogCount>, failed: (error: unknown) => void, observe: (pending: number) => void = () => {}) {
    this.#countNow = countNow
    this.#failed = failed
    this.#observe = observe
  }

  get size (): number {
    return this.#count
  }

  /**
   * When the oldest pending event was received, as of the last count; an
   * accept here since, when none was pending then. Undefined once this
   * process's count says nothing is pending.
   */
  get oldestReceivedAt (): number | undefined {
    return this.#count === 0 ? undefined : this.#oldest
  }

  added (events: number, at = Date.now()): void {
    this.#count += events
    this.#sinceSent += events
    if (events > 0) this.#oldest ??= at
    this.#observe(this.#count)
  }

  finished (events: number): void {
    this.#count = Math.max(0, this.#count - events)
    this.#sinceSent -= events
    if (this.#count === 0) this.#oldest = undefined
  }

  /** Counts the table again; one count at a time, shared by whoever asks meanwhile. */
  async refresh (): Promise<void> {
    this.#recount ??= this.#take().finally(() => { this.#recount = undefined })
    await this.#recount
  }

  /**
   * Whether one more event fits under `max`: at once when the count says so,
   * else after counting again (unless just counted), waiting at most `waitMs`.
   */
  admits (max: number, waitMs: number): boolean | Promise<boolean> {
    if (this.#count < max) return true
    if (Date.now() - this.#countedAt < MIN_RECOUNT_MS) return false
    return withDeadline(this.refresh().then(() => this.#count < max), waitMs, () => false)
  }

  async #take (): Promise<void> {
    this.#sinceSent = 0
    try {
      const counted = await this.#countNow()
      this.#count = Math.max(0, counted.pending + this.#sinceSent)
      this.#oldest = counted.oldestReceivedAt
      this.#observe(this.#count)
    } catch (error) {
      this.#failed(error)
    } finally {
      this.#countedAt = Date.now()
    }
  }
}
