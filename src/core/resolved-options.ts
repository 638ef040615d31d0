// The options' shapes without the inbox, so that inbox.ts and options.ts do not
// import each other.
import type { ResolvedOrdering } from './ordering/options.js'

export interface RetryOptions {
  /** Tries per handler, the first included. Default 5. */
  attempts?: number
  /** Upper bound of the first backoff; each later one doubles, with full jitter. Default 500. */
  minDelayMs?: number
  /** Cap on any backoff. Default 30 000. */
  maxDelayMs?: number
}

export interface DedupeOptions {
  /**
   * How long an event id is remembered after it was last seen. In memory a duplicate
   * counts as seen and restarts the window; durable inboxes count from acceptance
   * (their `retentionSeconds`). Default 7 days.
   */
  ttlSeconds?: number
  /** How many ids the in-memory inbox remembers at most; the least recently seen (a duplicate counts as seen) go first. Default 100 000. */
  maxEntries?: number
}

/** How long a handler may keep saying RetryLater before it counts as failing (docs/design.md, "Flow control"). */
export interface RetryLaterOptions {
  /** Deferrals of one handler's run of one event. Default 100. */
  maxDeferrals?: number
  /** Time from the first deferral to the run asked for. Default 24 hours. */
  maxDeferredMs?: number
}

export type ResolvedRetryLater = Required<RetryLaterOptions>

export interface ResolvedOptions {
  secrets: readonly string[]
  toleranceSeconds: number
  concurrency: number
  maxQueueSize: number
  /**
   * True when the user set `maxQueueSize`: a durable inbox then holds its backlog
   * to it as well as to its own `maxBacklog`. The default bounds the memory inbox only.
   */
  maxQueueSizeSet: boolean
  retry: Required<RetryOptions>
  dedupe: Required<DedupeOptions>
  bodyLimit: number
  retryAfterSeconds: number
  closeGraceMs: number
  /** `health()` reports `degraded` from this many events accepted and not finished. */
  degradedQueueSize: number
  retryLater: ResolvedRetryLater
  /** The `ordering` option, checked; undefined when it is not set. */
  ordering: ResolvedOrdering | undefined
  clock: () => number
}
