import type { InboxHealth } from '../core/inbox.js'
import { isBusy } from './write-errors.js'
import { describe } from './open.js'

/** The steps whose lasting failure means accepted events would never run. */
export type HealthCheckedStep = 'claim' | 'outcome write'

/**
 * Which steps are failing now. A step is failing from its first error until its
 * next success: claims are retried every poll and outcome writes with each re-run
 * of the event, so a store that recovers clears its own reasons. A lock held by
 * another process (SQLITE_BUSY) is contention, not damage: those deliveries get
 * their 503 from their own deadline.
 */
export class HealthTracker {
  readonly #failing = new Map<HealthCheckedStep, string>()
  /** The file was deleted or replaced: nothing written from now on would last, until a restart. */
  #fileGone: string | undefined

  get degraded (): boolean {
    return this.#failing.size > 0 || this.#fileGone !== undefined
  }

  /** Records that the inbox's file is gone; true the first time. */
  fileGone (reason: string): boolean {
    if (this.#fileGone !== undefined) return false
    this.#fileGone = `${reason}; restart the receiver on a restored file`
    return true
  }

  /** Records a failure; true when it turns a healthy inbox degraded. */
  failed (step: HealthCheckedStep, error: unknown): boolean {
    if (isBusy(error)) return false
    const wasDegraded = this.degraded
    this.#failing.set(step, `${step}s are failing (${describe(error)})`)
    return !wasDegraded
  }

  /** Records a success; true when it was the last failing step. */
  succeeded (step: HealthCheckedStep): boolean {
    return this.#failing.delete(step) && !this.degraded
  }

  report (): InboxHealth {
    const reasons = [...this.#failing.values()]
    if (this.#fileGone !== undefined) reasons.unshift(this.#fileGone)
    return { status: this.degraded ? 'degraded' : 'ok', reasons }
  }
}
