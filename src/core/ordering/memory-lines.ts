import type { HandlerOrdering, OrderedOutcome, OrderingEngine } from './engine.js'
import type { MemoryOrderingStore } from './memory-store.js'
import type { OrderedEventRef } from './store.js'

/** An ordered event of the memory queue; `ready` once its answer is on its way (it may start then). */
export interface MemoryOrderedRef extends OrderedEventRef {
  ready: boolean
}

/**
 * The memory inbox's side of ordering: it starts the head of a key itself when
 * the key frees up (a run ended, a hold ran out, an operator unblocked it), as
 * `ParkedRuns` does for flow control. Events waiting for their key hold no
 * concurrency slot, so a slow, failing or blocked key holds up no other key. One
 * timer per held key, not per event.
 */
export class MemoryOrderedLines<R extends MemoryOrderedRef> {
  readonly #engine: OrderingEngine
  readonly #store: MemoryOrderingStore<R>
  readonly #start: (ref: R, ordering: HandlerOrdering) => void
  readonly #clock: () => number
  readonly #timers = new Map<string, ReturnType<typeof setTimeout>>()
  // Keys to look at: a loop rather than recursion, since a skipped stale event
  // finishes at once and starts the next, which may be skipped too.
  readonly #due: string[] = []
  #pumping = false
  #closed = false

  /** `start` runs the event's handlers with what they are told, or finishes it when the engine skips it. */
  constructor (engine: OrderingEngine, store: MemoryOrderingStore<R>, start: (ref: R, ordering: HandlerOrdering) => void, clock: () => number) {
    this.#engine = engine
    this.#store = store
    this.#start = start
    this.#clock = clock
    engine.onUnblock((key) => { this.#pump(key) })
  }

  /** In its key's line from acceptance on, so events accepted together are ordered by createdAt. */
  accepted (ref: R): void {
    this.#store.enqueue(ref)
  }

  /** Its answer is on its way: it may run once it is the head of its key. */
  ready (ref: R): void {
    ref.ready = true
    this.#pump(ref.key)
  }

  finished (ref: R, outcome: OrderedOutcome): void {
    if (this.#closed) return
    void this.#engine.finished(ref, outcome)
    this.#pump(ref.key)
  }

  /** For close(): no key starts another event; the queue dead-letters what is left. */
  close (): void {
    this.#closed = true
    for (const timer of this.#timers.values()) clearTimeout(timer)
    this.#timers.clear()
    this.#store.clear()
  }

  #pump (key: string): void {
    this.#due.push(key)
    if (this.#pumping) return
    this.#pumping = true
    try {
      for (let next = this.#due.shift(); next !== undefined; next = this.#due.shift()) this.#startHead(next)
    } finally {
      this.#pumping = false
    }
  }

  #startHead (key: string): void {
    // A pending hold timer already stands for the head: a later arrival's hold ends later.
    if (this.#closed || this.#timers.has(key)) return
    const head = this.#store.head(key)
    if (head === undefined || !head.ready) return
    const answer = this.#store.take(head, this.#clock())
    if (answer.taken) {
      this.#start(head, this.#engine.admitted(head, answer.newestHandledAt))
      return
    }
    if (answer.wait === 'held') {
      this.#timers.set(key, setTimeout(() => {
        this.#timers.delete(key)
        this.#pump(key)
      }, answer.retryInMs))
    }
  }
}
