/** What `new RetryLater()` waits when no `afterMs` is given. */
export const DEFAULT_RETRY_LATER_MS = 1_000

/**
 * Thrown by a handler to say "not now" without failing: downstream answered 429
 * with `Retry-After`, or is down for a while. An inbox with flow control defers
 * this handler's run of the event by `afterMs` without using an attempt, up to the
 * receiver's `retryLater` bound; past it, or on an inbox without flow control, it
 * is an ordinary failure (an attempt used, retried with backoff, then dead-lettered).
 */
export class RetryLater extends Error {
  readonly code = 'RETRY_LATER'
  readonly afterMs: number

  constructor (options: { afterMs?: number } = {}) {
    const afterMs = options?.afterMs ?? DEFAULT_RETRY_LATER_MS
    if (typeof afterMs !== 'number' || !Number.isFinite(afterMs) || afterMs < 0) {
      // A handler's own bug, thrown where it is written rather than deferring forever.
      throw new TypeError(`sir-webhooks: RetryLater "afterMs" must be a non-negative number of milliseconds, got ${String(afterMs)}`)
    }
    super(`the handler asked to be run again in ${Math.round(afterMs)} ms`)
    this.name = 'RetryLater'
    this.afterMs = Math.round(afterMs)
  }
}

/** Also across two copies of the package (a bundled handler, say): told by name and code. */
export function isRetryLater (error: unknown): error is RetryLater {
  return error instanceof RetryLater ||
    (error instanceof Error && error.name === 'RetryLater' && (error as { code?: unknown }).code === 'RETRY_LATER' && typeof (error as { afterMs?: unknown }).afterMs === 'number')
}
