// The options' shapes without the inbox, so that inbox.ts and options.ts do not
// import each other.

export interface RetryOptions {
  /** Tries per handler, the first included. Default 5. */
  attempts?: number
  /** Upper bound of the first backoff; each later one doubles, with full jitter. Default 500. */
  minDelayMs?: number
  /** Cap on any backoff. Default 30 000. */
  maxDelayMs?: number
}

export interface DedupeOptions {
  /** How long an event id is remembered. Default 7 days. */
  ttlSeconds?: number
  /** How many ids are remembered at most; the least recently seen go first. Default 100 000. */
  maxEntries?: number
}

export interface ResolvedOptions {
  secrets: readonly string[]
  toleranceSeconds: number
  concurrency: number
  maxQueueSize: number
  retry: Required<RetryOptions>
  dedupe: Required<DedupeOptions>
  bodyLimit: number
  retryAfterSeconds: number
  closeGraceMs: number
  /** `health()` reports `degraded` from this many events accepted and not finished. */
  degradedQueueSize: number
  clock: () => number
}
