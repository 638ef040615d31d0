import type { DeadLetter } from '../core/handlers.js'
import type { HandlerRun, InboxRuntime } from '../core/inbox.js'
import type { HandlerOrdering, OrderingEngine } from '../core/ordering/engine.js'
import type { OrderedEventRef } from '../core/ordering/store.js'
import type { EventRow } from './schema.js'
import { idFromKey } from './ids.js'

/** A claimed row's place in its key's line, or undefined for an unordered event. */
export function refOf (row: EventRow, engine: OrderingEngine | undefined): OrderedEventRef | undefined {
  if (engine === undefined || row.ordering_key === null) return undefined
  const createdAt = row.created_at_ms ?? row.received_at
  // seq: the row's acceptance order is the claim's tie-break (rowid); the engine asks nothing more of it.
  return { id: idFromKey(row.id), key: row.ordering_key, createdAt, seq: 0, notBefore: row.received_at + engine.options.holdMs }
}

/**
 * What an ordered event's handlers are told. The newest handled createdAt of
 * the key cannot move while the event holds its key, so every attempt is told
 * the same; only the first asks the engine, which counts stale runs.
 */
export function orderingOf (engine: OrderingEngine | undefined, ref: OrderedEventRef | undefined, newest: number | undefined, first: boolean): HandlerOrdering | undefined {
  if (engine === undefined || ref === undefined) return undefined
  if (first) return engine.admitted(ref, newest)
  return { key: ref.key, stale: newest !== undefined && ref.createdAt < newest, newestHandledAt: newest === undefined ? undefined : new Date(newest) }
}

/**
 * The runtime as an ordered event's handlers see it: every run, and the dead
 * letter a run ends in, carries the event's `ordering`. The shared attempt code
 * (core/attempt.ts, core/flow/attempt.ts) builds its runs without it, so this
 * adds it on the way through rather than changing their signatures. A class, not
 * an object of closures: one is made per ordered event, and the drain of a
 * backlog makes thousands a second.
 */
class OrderedRuntime implements InboxRuntime {
  readonly #inner: InboxRuntime
  readonly #ordering: HandlerOrdering

  constructor (inner: InboxRuntime, ordering: HandlerOrdering) {
    this.#inner = inner
    this.#ordering = ordering
  }

  get options (): InboxRuntime['options'] { return this.#inner.options }
  get logger (): InboxRuntime['logger'] { return this.#inner.logger }
  get signal (): AbortSignal { return this.#inner.signal }
  get hasHandlers (): boolean { return this.#inner.hasHandlers }
  get flow (): InboxRuntime['flow'] { return this.#inner.flow }
  get ordering (): InboxRuntime['ordering'] { return this.#inner.ordering }

  handlersFor (type: string): ReturnType<InboxRuntime['handlersFor']> { return this.#inner.handlersFor(type) }
  runHandler (run: HandlerRun, extra?: object): unknown { return this.#inner.runHandler(this.#with(run), extra) }
  handlerSucceeded (run: HandlerRun): void { this.#inner.handlerSucceeded(this.#with(run)) }
  handlerRetrying (run: HandlerRun, error: unknown, retryInMs: number): void { this.#inner.handlerRetrying(this.#with(run), error, retryInMs) }
  async handlerFailed (run: HandlerRun, error: unknown): Promise<void> { await this.#inner.handlerFailed(this.#with(run), error) }

  async deadLetter (entry: DeadLetter): Promise<void> {
    const engine = this.#inner.ordering
    await this.#inner.deadLetter(entry.ordering === undefined && engine !== undefined ? { ...entry, ordering: engine.deadLetterNote(this.#ordering.key) } : entry)
  }

  #with (run: HandlerRun): HandlerRun {
    return run.ordering === undefined ? { ...run, ordering: this.#ordering } : run
  }
}

export function orderedRuntime (runtime: InboxRuntime, ordering: HandlerOrdering | undefined): InboxRuntime {
  return ordering === undefined ? runtime : new OrderedRuntime(runtime, ordering)
}
