import type { AnyEvent } from '../events.js'
import type { WebhookLogger } from '../logger.js'
import { eventTag } from '../run-context.js'
import type { ResolvedOrdering } from './options.js'
import type { BlockedKey, OrderedEventRef, OrderingStore } from './store.js'

/** The handler context's `ordering`: undefined for an event without a key. */
export interface HandlerOrdering {
  /** The event's key, as `ordering.key` returned it. */
  readonly key: string
  /** True when an event of this key with a later `createdAt` was already handled to completion. */
  readonly stale: boolean
  /** The newest `createdAt` of this key handled to completion before this run, where it is remembered. */
  readonly newestHandledAt: Date | undefined
}

/** What a dead letter of an ordered event says of its key. */
export interface DeadLetterOrdering {
  key: string
  /** `skipped`: the key moved on without it (`onDeadLetter: 'skip'`). `blocked`: the key waits for it (`'block'`). */
  keyAction: 'skipped' | 'blocked'
}

/** What `stats().ordering` says, when the receiver has the `ordering` option. */
export interface OrderingStats {
  /** Keys with an event waiting for its turn. */
  waitingKeys: number
  /** Keys blocked behind a dead letter (`onDeadLetter: 'block'`). */
  blockedKeys: number
  /** Runs whose context said `stale` (the handler decided what to do). */
  stale: number
  /** Stale events not run (`skipStale`): done, with the outcome `stale`. */
  skippedStale: number
  /** Dead letters after which their key moved on (`onDeadLetter: 'skip'`). */
  skippedDeadLetters: number
  /** Events left unordered because `ordering.key` threw or returned something other than a string. */
  keyErrors: number
}

/** How an ordered event's turn ended. */
export type OrderedOutcome = 'handled' | 'stale' | 'dead'

/**
 * The ordering engine, once for every inbox: computes each accepted event's key,
 * decides what a run is told (stale or not) and whether it runs at all
 * (`skipStale`), and what a dead letter does to its key (`onDeadLetter`). Who is
 * the head of a key, and whether its run is live, is the store's to answer.
 */
export class OrderingEngine {
  readonly options: ResolvedOrdering
  readonly store: OrderingStore
  readonly #logger: WebhookLogger
  readonly #clock: () => number
  readonly #onStale: ((skipped: boolean) => void) | undefined
  readonly #unblockListeners: Array<(key: string) => void> = []
  #seq = 0
  #stale = 0
  #skippedStale = 0
  #skippedDeadLetters = 0
  #keyErrors = 0

  constructor (options: ResolvedOrdering, store: OrderingStore, logger: WebhookLogger, clock: () => number, onStale?: (skipped: boolean) => void) {
    this.options = options
    this.store = store
    this.#logger = logger
    this.#clock = clock
    this.#onStale = onStale
  }

  /**
   * The event's place in its key's line, or undefined when it has no key. Runs
   * the user's key function once, at accept, and never throws: a key that cannot
   * be computed leaves the event unordered (logged, counted) rather than
   * changing the answer or holding up a key that might be wrong.
   */
  refFor (event: AnyEvent, receivedAt: number): OrderedEventRef | undefined {
    let key: unknown
    try {
      key = this.options.key(event)
    } catch (error) {
      this.#keyFailed(event, error)
      return undefined
    }
    if (key === undefined) return undefined
    if (typeof key !== 'string') {
      this.#keyFailed(event, new TypeError(`ordering.key returned ${key === null ? 'null' : typeof key}, not a string or undefined`))
      return undefined
    }
    const parsed = Date.parse(event.createdAt)
    // The envelope check leaves createdAt's format free; one that does not parse
    // is ordered by when it was accepted.
    const createdAt = Number.isNaN(parsed) ? receivedAt : parsed
    this.#seq += 1
    return { id: event.id, key, createdAt, seq: this.#seq, notBefore: receivedAt + this.options.holdMs }
  }

  /** The event took its key: what its handlers are told. Counts a stale run. */
  admitted (ref: OrderedEventRef, newestHandledAt: number | undefined): HandlerOrdering {
    const stale = newestHandledAt !== undefined && ref.createdAt < newestHandledAt
    if (stale) {
      if (this.options.skipStale) this.#skippedStale += 1
      else this.#stale += 1
      this.#onStale?.(this.options.skipStale)
    }
    return { key: ref.key, stale, newestHandledAt: newestHandledAt === undefined ? undefined : new Date(newestHandledAt) }
  }

  /** Whether a run so told is not run at all: done, with the outcome `stale`. */
  skips (ordering: HandlerOrdering): boolean {
    return ordering.stale && this.options.skipStale
  }

  /** The event's turn ended: its key is released, or blocked by a dead letter under `onDeadLetter: 'block'`. */
  finished (ref: OrderedEventRef, outcome: OrderedOutcome): void | Promise<void> {
    if (outcome !== 'dead') return this.store.release(ref, ref.createdAt)
    if (this.options.onDeadLetter === 'block') return this.store.block(ref, this.#clock())
    this.#skippedDeadLetters += 1
    return this.store.release(ref, undefined)
  }

  /** What a dead letter of this event says of its key. */
  deadLetterNote (key: string): DeadLetterOrdering {
    return { key, keyAction: this.options.onDeadLetter === 'block' ? 'blocked' : 'skipped' }
  }

  async blocked (): Promise<BlockedKey[]> {
    return await this.store.blocked()
  }

  async unblock (key: string): Promise<boolean> {
    const unblocked = await this.store.unblock(key)
    if (unblocked) for (const listener of this.#unblockListeners) listener(key)
    return unblocked
  }

  /** Called with a key moved on by `unblock`: an inbox that starts runs itself starts the next. */
  onUnblock (listener: (key: string) => void): void {
    this.#unblockListeners.push(listener)
  }

  stats (): OrderingStats {
    const { waiting, blocked } = this.store.counts()
    return { waitingKeys: waiting, blockedKeys: blocked, stale: this.#stale, skippedStale: this.#skippedStale, skippedDeadLetters: this.#skippedDeadLetters, keyErrors: this.#keyErrors }
  }

  #keyFailed (event: AnyEvent, error: unknown): void {
    this.#keyErrors += 1
    // The event's id and type only: the key function saw the whole event.
    this.#logger.warn({ event: eventTag(event), err: error }, 'ordering.key failed for this event: it runs unordered')
  }
}
