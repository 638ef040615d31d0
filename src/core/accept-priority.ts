/**
 * Accepts before handler work, in the store as in the process. A durable inbox
 * reports how long each accept (or batch of them) waited on its store. Once per
 * step (`stepMs`), the waits of that step decide: when more than a tenth of them
 * were slow, the handler slots allowed at once are halved (down to a quarter); when
 * none was, one slot comes back. An accept still waiting far past the usual
 * (`waitingSince`) halves them at once, without waiting for the step. With no
 * accept for `idleMs` and none waiting, every slot is allowed again: a backlog
 * drains at full speed once deliveries stop, and at what the store can spare
 * while they come. Without it, a drain's claims and commits shared the database
 * with the accepts as equals and a 2xx waited behind them (docs/design.md,
 * "Acknowledgements while a backlog drains"). A receiver started onto a large
 * backlog begins lower still, with one slot (`startingOnto`).
 *
 * Slow is relative: past twice the shortest wait of the last few seconds, and
 * past 10 ms. A store that is simply far away (a remote database's round
 * trips) is not taken for a busy one, and a wait that is slow now and then
 * (an fsync that took longer) does not pin the handlers low: a step needs more
 * than a tenth of its waits slow.
 */
export interface AcceptPriorityOptions {
  /** How often (ms) the allowance may step, down or up. */
  stepMs?: number
  /** No accept for this long (ms), and none waiting: every slot is allowed. */
  idleMs?: number
  now?: () => number
  /** When the accept waiting longest on the store now was called (undefined: none waits). */
  waitingSince?: () => number | undefined
  /** Told each new allowance, the return to every slot after `idleMs` included (a timer, unref'd): for a worker that is set, not asked. */
  onChange?: (allowed: number) => void
}

/** The least wait (ms) counted as slow, whatever the shortest recent wait. */
const TARGET_MS = 10
/** The shortest wait is kept per second, over this many seconds. */
const BASELINE_SECONDS = 5
/** A step halves the allowance when more than this share of its waits were slow. */
const SLOW_SHARE = 0.1
/** An accept still waiting past this many times the slow mark (and past URGENT_MS) halves the allowance at once. */
const URGENT_FACTOR = 4
const URGENT_MS = 50
/** A receiver starting onto at least this many waiting events begins with one slot (startingOnto). */
export const START_LOW_BACKLOG = 10_000

export class AcceptPriority {
  readonly #slots: number
  /** The fewest slots slow accepts leave: a quarter of them, so that a handler paced by its own rate or waiting on RetryLater keeps up (a start onto a backlog is below it for its first steps). */
  readonly #floor: number
  readonly #stepMs: number
  readonly #idleMs: number
  readonly #now: () => number
  readonly #waitingSince: (() => number | undefined) | undefined
  readonly #onChange: ((allowed: number) => void) | undefined
  #idleTimer: NodeJS.Timeout | undefined
  #rampTimer: NodeJS.Timeout | undefined
  /** When a start onto a backlog began its ramp (startingOnto); undefined once every slot is allowed. */
  #startedLowAt: number | undefined
  /** startingOnto ran: a receiver starts once. */
  #started = false
  #stopped = false
  #allowed: number
  #changedAt = -Infinity
  #lastAcceptAt = -Infinity
  /** This step's waits: how many, and how many slow. */
  #step = { startedAt: -Infinity, waits: 0, slow: 0 }
  /** The shortest wait of each recent second, by second. */
  readonly #shortest = new Map<number, number>()

  constructor (slots: number, options: AcceptPriorityOptions = {}) {
    this.#slots = slots
    this.#floor = Math.max(1, Math.ceil(slots / 4))
    this.#allowed = slots
    this.#stepMs = options.stepMs ?? 250
    this.#idleMs = options.idleMs ?? 2_000
    this.#now = options.now ?? Date.now
    this.#waitingSince = options.waitingSince
    this.#onChange = options.onChange
  }

  /** An accept, or a batch of them, waited `ms` on the store, counted from its first delivery's arrival. */
  accepted (ms: number): void {
    const now = this.#now()
    this.#lastAcceptAt = now
    const second = Math.floor(now / 1000)
    this.#shortest.set(second, Math.min(ms, this.#shortest.get(second) ?? Infinity))
    for (const at of this.#shortest.keys()) if (at <= second - BASELINE_SECONDS) this.#shortest.delete(at)
    if (now - this.#step.startedAt >= this.#stepMs) this.#endStep(now)
    this.#step.waits++
    if (ms > this.#slowMark()) this.#step.slow++
  }

  /**
   * A receiver starting onto `waiting` events: past `START_LOW_BACKLOG` it
   * begins with one slot and doubles it each `stepMs`, by the clock whatever
   * the accepts, until every slot is allowed (10 slots: 1 s; 100: 1.75 s); slow
   * accepts lower it meanwhile as at any time. Its accept path is not optimised
   * yet nor its connections open, and a backlog drained with every slot from its
   * first millisecond held its first acknowledgements longest (docs/design.md,
   * "A receiver's first second"). Smaller backlogs start with every slot: they
   * are drained before it would matter. `onChange` is told each doubling.
   */
  startingOnto (waiting: number): void {
    if (waiting < START_LOW_BACKLOG || this.#slots <= 1 || this.#stopped || this.#started) return
    this.#started = true
    this.#startedLowAt = this.#now()
    this.#onChange?.(this.allowed)
    this.#nextRampStep(1)
  }

  /** Tells onChange at each doubling, timed from the start by the same clock as the cap (a timer may fire early by its own). */
  #nextRampStep (step: number): void {
    const startedAt = this.#startedLowAt
    if (startedAt === undefined || this.#stopped) return
    const dueIn = Math.max(1, startedAt + step * this.#stepMs - this.#now() + 1)
    this.#rampTimer = setTimeout(() => {
      this.#rampTimer = undefined
      const allowed = this.allowed
      this.#onChange?.(allowed)
      this.#nextRampStep(step + 1)
    }, dueIn)
    this.#rampTimer.unref()
  }

  /** Handler slots that may run at once now. */
  get allowed (): number {
    const now = this.#now()
    const since = this.#waitingSince?.()
    if (since !== undefined && now - since > Math.max(URGENT_MS, URGENT_FACTOR * this.#slowMark())) {
      if (now - this.#changedAt >= URGENT_MS) this.#halve(now)
    } else if (since === undefined && this.#allowed < this.#slots && now - this.#lastAcceptAt >= this.#idleMs) {
      this.#set(this.#slots, now)
    }
    return Math.min(this.#allowed, this.#startCap(now))
  }

  /** While a start onto a backlog ramps up: one slot, doubled each step; then no cap. */
  #startCap (now: number): number {
    if (this.#startedLowAt === undefined) return Infinity
    // At least one: a wall clock set back must not leave a fraction of a slot.
    const cap = Math.max(1, 2 ** Math.floor((now - this.#startedLowAt) / this.#stepMs))
    if (cap < this.#slots) return cap
    this.#startedLowAt = undefined
    return Infinity
  }

  /** Ends the timers, and arms none again (close). */
  stop (): void {
    this.#stopped = true
    clearTimeout(this.#idleTimer)
    this.#idleTimer = undefined
    clearTimeout(this.#rampTimer)
    this.#rampTimer = undefined
  }

  /** Past this a wait is slow: twice the shortest of the last seconds, and at least TARGET_MS. */
  #slowMark (): number {
    let shortest = Infinity
    for (const wait of this.#shortest.values()) shortest = Math.min(shortest, wait)
    return Math.max(TARGET_MS, 2 * shortest)
  }

  #endStep (now: number): void {
    const { waits, slow } = this.#step
    if (waits > 0 && slow > waits * SLOW_SHARE) this.#halve(now)
    else if (waits > 0 && slow === 0 && this.#allowed < this.#slots) this.#set(this.#allowed + 1, now)
    this.#step = { startedAt: now, waits: 0, slow: 0 }
  }

  #halve (now: number): void {
    if (this.#allowed > this.#floor) this.#set(Math.max(this.#floor, Math.floor(this.#allowed / 2)), now)
  }

  #set (allowed: number, now: number): void {
    this.#allowed = allowed
    this.#changedAt = now
    if (this.#onChange === undefined) return
    this.#onChange(allowed)
    if (allowed < this.#slots) this.#armIdle(this.#idleMs)
  }

  #armIdle (ms: number): void {
    if (this.#idleTimer !== undefined || this.#stopped) return
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined
      const quiet = this.#now() - this.#lastAcceptAt
      if (quiet >= this.#idleMs && this.#waitingSince?.() === undefined) this.#set(this.#slots, this.#now())
      else if (this.#allowed < this.#slots) this.#armIdle(quiet >= this.#idleMs ? this.#idleMs : this.#idleMs - quiet)
    }, ms)
    this.#idleTimer.unref()
  }
}
