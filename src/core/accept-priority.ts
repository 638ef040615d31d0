/**
 * Accepts before handler work, in the store as in the process. A durable inbox
 * reports how long each accept (or batch of them) waited on its store. While
 * those waits run past their target, the handler slots allowed at once are
 * halved (down to one); while they stay under it, they grow back one at a time,
 * a step per `stepMs`. With no accept for `idleMs`, every slot is allowed again:
 * a backlog drains at full speed once deliveries stop, and at what the store
 * can spare while they come. Without it, a drain's claims and commits shared the
 * database with the accepts as equals and a 2xx waited behind them
 * (docs/performance.md, "Flow control and bursts").
 *
 * The target is relative: twice the shortest wait of the last few seconds, and
 * at least `targetMs`. A store that is simply far away (a remote database's
 * round trips) is not mistaken for a busy one and does not pin the handlers to one slot.
 */
export interface AcceptPriorityOptions {
  /** The least wait (ms) counted as slow, whatever the shortest recent wait. */
  targetMs?: number
  /** The least time (ms) between two steps up of the allowance. */
  stepMs?: number
  /** No accept for this long (ms): every slot is allowed. */
  idleMs?: number
  now?: () => number
  /** Told each new allowance, the idle return to every slot included (a timer, unref'd): for a worker that is set, not asked. */
  onChange?: (allowed: number) => void
}

/** The shortest wait is kept per second, over this many seconds. */
const BASELINE_SECONDS = 5
/** Two halvings at least this far apart (ms): the batches already in flight when the first was decided report late. */
const HALVING_GAP_MS = 20

export class AcceptPriority {
  readonly #slots: number
  readonly #targetMs: number
  readonly #stepMs: number
  readonly #idleMs: number
  readonly #now: () => number
  readonly #onChange: ((allowed: number) => void) | undefined
  #idleTimer: NodeJS.Timeout | undefined
  #allowed: number
  #changedAt = -Infinity
  #lastAcceptAt = -Infinity
  /** The shortest wait of each recent second, by second. */
  readonly #shortest = new Map<number, number>()

  constructor (slots: number, options: AcceptPriorityOptions = {}) {
    this.#slots = slots
    this.#allowed = slots
    this.#targetMs = options.targetMs ?? 10
    this.#stepMs = options.stepMs ?? 250
    this.#idleMs = options.idleMs ?? 2_000
    this.#now = options.now ?? Date.now
    this.#onChange = options.onChange
  }

  /** An accept, or a batch of them, waited `ms` on the store, counted from its first delivery's arrival. */
  accepted (ms: number): void {
    const now = this.#now()
    this.#lastAcceptAt = now
    const slow = ms > Math.max(this.#targetMs, 2 * this.#baseline(now, ms))
    if (slow) {
      if (this.#allowed > 1 && now - this.#changedAt >= HALVING_GAP_MS) this.#set(Math.max(1, Math.floor(this.#allowed / 2)), now)
    } else if (this.#allowed < this.#slots && now - this.#changedAt >= this.#stepMs) {
      this.#set(this.#allowed + 1, now)
    }
  }

  /** Handler slots that may run at once now. */
  get allowed (): number {
    if (this.#allowed < this.#slots && this.#now() - this.#lastAcceptAt >= this.#idleMs) this.#set(this.#slots, this.#now())
    return this.#allowed
  }

  /** The shortest wait over the last seconds, `ms` included. */
  #baseline (now: number, ms: number): number {
    const second = Math.floor(now / 1000)
    this.#shortest.set(second, Math.min(ms, this.#shortest.get(second) ?? Infinity))
    let shortest = Infinity
    for (const [at, wait] of this.#shortest) {
      if (at <= second - BASELINE_SECONDS) this.#shortest.delete(at)
      else shortest = Math.min(shortest, wait)
    }
    return shortest
  }

  #set (allowed: number, now: number): void {
    this.#allowed = allowed
    this.#changedAt = now
    if (this.#onChange === undefined) return
    this.#onChange(allowed)
    if (allowed < this.#slots) this.#armIdle(this.#idleMs)
  }

  #armIdle (ms: number): void {
    if (this.#idleTimer !== undefined) return
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined
      const quiet = this.#now() - this.#lastAcceptAt
      if (quiet >= this.#idleMs) this.#set(this.#slots, this.#now())
      else this.#armIdle(this.#idleMs - quiet)
    }, ms)
    this.#idleTimer.unref()
  }
}
