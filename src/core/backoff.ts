import type { RetryOptions } from './options.js'

/**
 * Exponential backoff with full jitter: a uniform delay in [0, min(max, min·2^(n−1))].
 * Full jitter spreads retries of a burst that failed together (AWS architecture blog,
 * "Exponential Backoff And Jitter").
 */
export function backoffDelay (failedAttempt: number, retry: Required<RetryOptions>, random: () => number = Math.random): number {
  const ceiling = Math.min(retry.maxDelayMs, retry.minDelayMs * 2 ** (failedAttempt - 1))
  return Math.floor(random() * ceiling)
}
