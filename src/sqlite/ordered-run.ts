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
 * adds it on the way through rather than changing their signatures.
 */
export function orderedRuntime (runtime: InboxRuntime, ordering: HandlerOrdering | undefined): InboxRuntime {
  if (ordering === undefined) return runtime
  const withOrdering = (run: HandlerRun): HandlerRun => run.ordering === undefined ? { ...run, ordering } : run
  return {
    get options () { return runtime.options },
    get logger () { return runtime.logger },
    get signal () { return runtime.signal },
    get hasHandlers () { return runtime.hasHandlers },
    get flow () { return runtime.flow },
    get ordering () { return runtime.ordering },
    handlersFor: (type) => runtime.handlersFor(type),
    runHandler: (run, extra) => runtime.runHandler(withOrdering(run), extra),
    handlerSucceeded: (run) => { runtime.handlerSucceeded(withOrdering(run)) },
    handlerRetrying: (run, error, retryInMs) => { runtime.handlerRetrying(withOrdering(run), error, retryInMs) },
    handlerFailed: async (run, error) => { await runtime.handlerFailed(withOrdering(run), error) },
    deadLetter: async (entry: DeadLetter) => {
      await runtime.deadLetter(entry.ordering === undefined && runtime.ordering !== undefined ? { ...entry, ordering: runtime.ordering.deadLetterNote(ordering.key) } : entry)
    }
  }
}
