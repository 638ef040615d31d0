import type { Literal } from './queries.js'

/** How a deferred event waits: until `at`, or `unpausedAt` for a pause that is no longer there. */
export interface FlowWait {
  reason: string
  /** The handler's name (pause and slots are kept by name). */
  handler: string
  at: number
  unpausedAt: number
}

/**
 * The deferral's UPDATE: when the event is due again, and, for a pause or a
 * slot, what it waits for (`wait_reason`, `wait_handler`), so that a resume or
 * a slot's release can make it due at once (flow-store.ts). A pause's long
 * wait holds only while the pause row is there: a resume that committed before
 * this statement found no such wait to wake.
 */
export function deferStatement (s: string, literal: Literal, id: string, { reason, handler, at, unpausedAt }: FlowWait, more: string): string {
  const woken = reason === 'paused' || reason === 'concurrency'
  const next = reason === 'paused'
    ? `CASE WHEN EXISTS (SELECT 1 FROM ${s}.flow_paused WHERE handler IN ('', ${literal(handler)})) THEN ${literal(at)} ELSE ${literal(unpausedAt)} END`
    : literal(at)
  return `
      UPDATE ${s}.events SET next_attempt_at = ${next},
        wait_reason = ${woken ? literal(reason) : 'NULL'}, wait_handler = ${woken ? literal(handler) : 'NULL'}${more} WHERE id = ${literal(id)}`
}
