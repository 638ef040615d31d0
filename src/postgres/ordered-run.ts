import type { HandlerOrdering, OrderedOutcome, OrderingEngine } from '../core/ordering/engine.js'
import type { OrderedEventRef } from '../core/ordering/store.js'
import type { OrderingQueries } from './ordering-sql.js'
import type { ClaimedRow, Literal } from './queries.js'
import { storedKey } from './stored-text.js'

/** A claimed ordered event: its place in its key, and what its handlers are told. */
export interface OrderedClaim {
  ref: OrderedEventRef
  told: HandlerOrdering
}

/** What the end of an ordered event's turn adds to its commit. */
export interface KeyEnd {
  /** Handled (or skipped as stale): the key's newest handled moves to this createdAt, if newer, in the batch's one `handled` statement. */
  handled?: { key: string, createdAt: number }
  /** Otherwise a statement for the batch's commit: the key blocked, moved on, or held. */
  statement: string | undefined
  /** The key is free once the commit is in: its next head may be claimed. */
  released: string | undefined
  /** After the commit: the engine's count and the store's. */
  afterCommit (): Promise<void>
}

/** A key as the handler context has it: the stored text, or the key it stands for when it was stored escaped (stored-text.ts). */
function keyOf (stored: string): string {
  if (!stored.startsWith('"')) return stored
  try {
    const key: unknown = JSON.parse(stored)
    if (typeof key === 'string' && storedKey(key) === stored) return key
  } catch {
    // Not JSON: stored as it is.
  }
  return stored
}

/**
 * The claimed event's place in its key, when it has one: the claim took its
 * key's row lock as its head, so its turn has begun. The engine says what its
 * handlers are told, and counts a stale run (each attempt of one is a run).
 */
export function orderedClaim (engine: OrderingEngine | undefined, row: ClaimedRow, id: string): OrderedClaim | undefined {
  if (engine === undefined || row.ordering_key === null || row.ordering_key === undefined) return undefined
  const ref: OrderedEventRef = {
    id,
    key: keyOf(row.ordering_key),
    createdAt: Number(row.created_at_ms),
    seq: Number(row.order_seq),
    notBefore: 0
  }
  const newest = row.newest_handled_ms === null || row.newest_handled_ms === undefined ? undefined : Number(row.newest_handled_ms)
  return { ref, told: engine.admitted(ref, newest) }
}

/**
 * The end of an ordered event's turn, written in the commit that finishes it:
 * handled (or skipped as stale), its createdAt becomes the key's newest handled
 * if newer; dead, the key moves on (`skip`) or is blocked by it (`block`).
 */
export function keyEnd (engine: OrderingEngine, sql: OrderingQueries, literal: Literal, claim: OrderedClaim, outcome: OrderedOutcome, now: number): KeyEnd {
  const { ref } = claim
  const key = storedKey(ref.key)
  const block = outcome === 'dead' && engine.options.onDeadLetter === 'block'
  const id = storedKey(ref.id)
  return {
    ...(outcome !== 'dead' ? { handled: { key, createdAt: ref.createdAt } } : {}),
    statement: outcome !== 'dead' ? undefined : block ? sql.block(literal, key, id, now) : sql.skip(literal, key, id),
    released: block ? undefined : key,
    afterCommit: async () => { await engine.finished(ref, outcome) }
  }
}

/** The event runs again (a retry, or flow control deferred it): it keeps its key in between, written in the same commit. */
export function keyHeld (sql: OrderingQueries, literal: Literal, claim: OrderedClaim): KeyEnd {
  return { statement: sql.hold(literal, storedKey(claim.ref.key), storedKey(claim.ref.id)), released: undefined, afterCommit: async () => {} }
}
