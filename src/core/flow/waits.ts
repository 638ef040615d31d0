import type { DeferredRun } from './attempt.js'

/**
 * How long a run put off by a pause waits before it asks again: long, since a
 * paused backlog is otherwise rewritten at each wait (a million events asked
 * again every second is a million writes a second). `resume()` makes those
 * runs due at once, in the same transaction as the pause row's delete, and a
 * deferral written after the resume finds no pause row and is due soon.
 */
export const PAUSED_WAIT_MS = 300_000

/**
 * How long a run waits for a slot before it asks again; a slot given back
 * makes the runs that waited longest for it due at once. Short enough that a
 * wake-up that did not reach a run (another receiver's release, a lost
 * connection) costs at most this.
 */
export const CONCURRENCY_WAIT_MS = 1_000

/** When a deferred event runs again, and for which deferred run: the earliest, a pause's and a slot's waits lengthened since a wake-up reaches them. */
export function nextRun (deferred: readonly DeferredRun[], now: number): { nextAttemptAt: number, run: DeferredRun } {
  let earliest: { waitMs: number, run: DeferredRun } | undefined
  for (const run of deferred) {
    const waitMs = run.reason === 'paused'
      ? Math.max(run.retryInMs, PAUSED_WAIT_MS)
      : run.reason === 'concurrency' ? Math.max(run.retryInMs, CONCURRENCY_WAIT_MS) : run.retryInMs
    if (earliest === undefined || waitMs < earliest.waitMs) earliest = { waitMs, run }
  }
  const { waitMs, run } = earliest ?? { waitMs: 0, run: { key: '', handler: '', reason: 'rate' as const, retryInMs: 0 } }
  return { nextAttemptAt: now + Math.max(0, Math.round(waitMs)), run }
}
