import type { RegisteredHandler } from '../handlers.js'
import type { WebhookLogger } from '../logger.js'
import type { ResolvedRetryLater } from '../resolved-options.js'
import { isThenable } from '../thenable.js'
import { isRetryLater } from './retry-later.js'
import type { RateLimit } from './limits.js'
import type { FlowStore, PauseState, SlotLease } from './store.js'

/** Why a handler's run of an event was put off. */
export type DeferReason = 'paused' | 'rate' | 'concurrency' | 'retryLater'

/**
 * A run that may not start now. `retryInMs` is when to ask again, for a store
 * that cannot be woken; the memory inbox waits for a wake-up instead where the
 * reason is `paused` or `concurrency`.
 */
export interface Deferral {
  readonly reason: DeferReason
  readonly retryInMs: number
  /** A rate deferral asked with `reserve`: the token at `retryInMs` is this run's. */
  readonly reserved?: boolean
  /**
   * With `reserved`: the run holds a reserved token already due (now), and
   * `retryInMs` is only its wait for a start (the second bucket, below).
   */
  readonly held?: boolean
}

/**
 * How a run asks: `reserve` a future token when none is there now; or it
 * `holdsToken` reserved earlier. Either way it then needs a start (the second
 * bucket, `startsBucket`); see "Reservations and starts" in docs/design.md.
 */
export interface AdmitOptions {
  reserve?: boolean
  holdsToken?: boolean
}

/** A run that may start: call `release` once it has ended, whatever the outcome. */
export interface Admitted {
  readonly release: () => void
}

export type Admission = Admitted | Deferral

/** How often a handler paused (or at its concurrency) is asked about again, where no wake-up reaches it. */
export const PAUSED_RETRY_MS = 1_000
export const CONCURRENCY_RETRY_MS = 100

/** How many times, and since when, RetryLater put off one handler's run of one event. */
export interface DeferralRecord {
  count: number
  firstAt: number
}

/** Deferrals by reason, for one handler: what `stats().flow` reports. */
export type DeferralCounts = Record<DeferReason, number>

const ADMITTED_FREE: Admitted = Object.freeze({ release: () => {} })
// A default that allocates nothing: admit() runs before every handler run of the memory inbox.
const ASK_PLAINLY: AdmitOptions = Object.freeze({})

/**
 * The bucket that counts the starts of a handler whose runs reserve tokens:
 * a run that holds its reserved token still takes one from here, without
 * reserving, so however late reservations come back (a lag, a stall, BullMQ's
 * delayed jobs queued behind new ones) the starts keep the token bucket's bound.
 * The reservations stay in the handler's own bucket (a store upgraded in place
 * keeps its debts there). U+001F cannot be typed into a handler's name by
 * accident, and is allowed in a Redis key, a Postgres text and a SQLite text.
 */
export function startsBucket (handler: string): string {
  return `${handler}\u001fstarts`
}

export function isDeferral (admission: Admission): admission is Deferral {
  return 'reason' in admission
}

/**
 * The flow-control engine, once for every inbox: decides whether a handler's run
 * may start now (pause, concurrency, rate, in that order), and whether a
 * `RetryLater` is deferred or, past its bound, a failure. It asks the inbox's
 * `FlowStore` only for what must be shared: tokens and the pause state.
 */
export class FlowGate {
  readonly store: FlowStore
  readonly #bound: ResolvedRetryLater
  readonly #logger: WebhookLogger
  /** Runs of each limited handler in this process now. */
  readonly #running = new Map<string, number>()
  readonly #counts = new Map<string, DeferralCounts>()
  readonly #wakeListeners: Array<(handler: string | undefined) => void> = []

  readonly #onDeferred: ((handler: string, reason: DeferReason) => void) | undefined

  /** `onDeferred` hears every deferral (the OpenTelemetry counter). */
  constructor (store: FlowStore, bound: ResolvedRetryLater, logger: WebhookLogger, onDeferred?: (handler: string, reason: DeferReason) => void) {
    this.store = store
    this.#bound = bound
    this.#logger = logger
    this.#onDeferred = onDeferred
  }

  /** Whether this handler's run may start now. Synchronous unless the store's token answer is not. */
  admit (handler: RegisteredHandler, how: AdmitOptions = ASK_PLAINLY): Admission | Promise<Admission> {
    const name = handler.name
    const paused = this.store.pauseState()
    if (paused.all || paused.handlers.has(name)) return this.#defer(name, 'paused', PAUSED_RETRY_MS)
    const limits = handler.limits
    if (limits === undefined) return ADMITTED_FREE
    const running = this.#running.get(name) ?? 0
    if (limits.concurrency !== undefined && running >= limits.concurrency) return this.#defer(name, 'concurrency', CONCURRENCY_RETRY_MS)
    // The slot is taken before the token is asked for, so two admissions waiting
    // on Redis cannot both pass one free slot; it is given back if no token.
    this.#running.set(name, running + 1)
    if (limits.concurrency === undefined || this.store.takeSlot === undefined) return this.#afterSlot(handler, how, undefined)
    // A store that shares slots between processes or receivers is asked too: the
    // count above only spares it the question, the store's slot is the limit.
    let slot: ReturnType<NonNullable<FlowStore['takeSlot']>>
    try {
      slot = this.store.takeSlot(name, limits.concurrency)
    } catch (error) {
      this.#free(name)
      throw error
    }
    const afterSlot = (taken: SlotLease | undefined): Admission | Promise<Admission> => {
      if (taken !== undefined) return this.#afterSlot(handler, how, taken)
      this.#free(name)
      return this.#defer(name, 'concurrency', CONCURRENCY_RETRY_MS)
    }
    if (!isThenable(slot)) return afterSlot(slot)
    return Promise.resolve(slot).then(afterSlot, (error: unknown) => {
      this.#free(name)
      throw error
    })
  }

  /** Past pause and concurrency (holding `slot`, where the store shares slots): the token. */
  #afterSlot (handler: RegisteredHandler, how: AdmitOptions, slot: SlotLease | undefined): Admission | Promise<Admission> {
    const name = handler.name
    const rate = handler.limits?.rate
    if (rate === undefined) return this.#admitted(name, slot)
    const giveBack = (): void => {
      slot?.release()
      this.#free(name)
    }
    if (how.reserve === true || how.holdsToken === true) {
      return this.#reservedStart(name, rate, how.holdsToken === true, slot).catch((error: unknown) => {
        giveBack()
        throw error
      })
    }
    let waitMs: number | Promise<number>
    try {
      waitMs = this.store.takeToken(name, rate, false)
    } catch (error) {
      giveBack()
      throw error
    }
    if (!isThenable(waitMs)) return this.#afterToken(name, waitMs, false, slot)
    return Promise.resolve(waitMs).then((ms) => this.#afterToken(name, ms, false, slot), (error: unknown) => {
      giveBack()
      throw error
    })
  }

  /**
   * A run that reserves (or holds) a token: the handler's bucket says when the
   * run's turn is, the starts bucket when it may actually start. A token reserved
   * is never given up, however late its run comes back: it waits at most one
   * token interval for a start instead (two runs whose lag ended together).
   */
  async #reservedStart (name: string, rate: Required<RateLimit>, holds: boolean, slot: SlotLease | undefined): Promise<Admission> {
    if (!holds) {
      const turnMs = await this.store.takeToken(name, rate, true)
      if (turnMs > 0) return this.#afterToken(name, turnMs, true, slot)
    }
    const startMs = await this.store.takeToken(startsBucket(name), rate, false)
    if (startMs <= 0) return this.#admitted(name, slot)
    return { ...(this.#afterToken(name, startMs, true, slot) as Deferral), held: true }
  }

  /**
   * A handler threw: when it is a `RetryLater` within the receiver's bound, how
   * long to defer the run and the record to keep with it; undefined when it is a
   * failure like any other.
   */
  retryLater (handler: string, error: unknown, record: DeferralRecord | undefined, now: number): { deferMs: number, record: DeferralRecord } | undefined {
    if (!isRetryLater(error)) return undefined
    const firstAt = record?.firstAt ?? now
    const count = (record?.count ?? 0) + 1
    if (count > this.#bound.maxDeferrals || now + error.afterMs - firstAt > this.#bound.maxDeferredMs) {
      this.#logger.warn({ handler, deferrals: count - 1, deferredForMs: now - firstAt },
        'RetryLater past its bound (retryLater.maxDeferrals / maxDeferredMs): this run counts as a failed attempt')
      return undefined
    }
    this.#count(handler, 'retryLater')
    return { deferMs: error.afterMs, record: { count, firstAt } }
  }

  /** Pauses one handler, or all; the store decides who else sees it. */
  async pause (handler?: string): Promise<void> {
    await this.store.setPaused(handler, true)
  }

  async resume (handler?: string): Promise<void> {
    await this.store.setPaused(handler, false)
    this.#wake(handler)
  }

  pauseState (): PauseState {
    return this.store.pauseState()
  }

  /** Called with a handler name (or undefined: any) when runs put off may start again. */
  onWake (listener: (handler: string | undefined) => void): void {
    this.#wakeListeners.push(listener)
  }

  /** Deferrals so far, by handler and reason. */
  deferrals (): ReadonlyMap<string, Readonly<DeferralCounts>> {
    return this.#counts
  }

  #afterToken (name: string, waitMs: number, reserved: boolean, slot: SlotLease | undefined): Admitted | Deferral {
    if (waitMs <= 0) return this.#admitted(name, slot)
    slot?.release()
    this.#free(name)
    this.#count(name, 'rate')
    return { reason: 'rate', retryInMs: waitMs, reserved }
  }

  #admitted (name: string, slot?: SlotLease): Admitted {
    let released = false
    return {
      release: () => {
        if (released) return
        released = true
        slot?.release()
        this.#free(name)
        this.#wake(name)
      }
    }
  }

  #free (name: string): void {
    const running = (this.#running.get(name) ?? 1) - 1
    if (running <= 0) this.#running.delete(name)
    else this.#running.set(name, running)
  }

  #defer (name: string, reason: DeferReason, retryInMs: number): Deferral {
    this.#count(name, reason)
    return { reason, retryInMs }
  }

  /** Counts a deferral the gate was not asked about: a run queued behind its handler's parked ones. */
  noteDeferred (name: string, reason: DeferReason): void {
    this.#count(name, reason)
  }

  #count (name: string, reason: DeferReason): void {
    let counts = this.#counts.get(name)
    if (counts === undefined) {
      counts = { paused: 0, rate: 0, concurrency: 0, retryLater: 0 }
      this.#counts.set(name, counts)
    }
    counts[reason] += 1
    this.#onDeferred?.(name, reason)
  }

  #wake (handler: string | undefined): void {
    for (const listener of this.#wakeListeners) listener(handler)
  }
}
