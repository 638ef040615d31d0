import type { ResolvedLimits } from './flow/limits.js'

/** One handler's figures in `stats().handlers.byName`, since the receiver was made, in this process. */
export interface HandlerStats {
  /** Runs started: succeeded, retried and failed ones, and any still running. A deferral is no run. */
  runs: number
  succeeded: number
  /** Runs that failed and will be tried again. */
  retried: number
  /** Runs that failed for good (their event was dead-lettered). */
  failed: number
  /** Median run duration in ms over the last runs timed (every run of the first 1024, then one in 8); undefined before the first run ended. */
  p50Ms: number | undefined
  /** 99th percentile run duration in ms over the same runs. */
  p99Ms: number | undefined
  /** `concurrency` and `rate` as registered, where set. */
  limits?: ResolvedLimits
}

/**
 * How many run durations each handler keeps for its quantiles: the most recent
 * ones, so a percentile follows what the handler does now rather than averaging
 * in a slow start hours ago. 1024 doubles: 8 KB per handler, bounded.
 */
export const DURATION_SAMPLES = 1024

/**
 * Past its first DURATION_SAMPLES runs, a handler's run is timed one in this
 * many: timing an async run costs a closure and a promise reaction, which a busy
 * handler's quantiles do not need on every run. The ring then spans its last
 * ~8000 runs.
 */
export const TIME_ONE_IN = 8

/**
 * One handler's counters: plain fields bumped in place and a ring of run
 * durations, so a run costs a few increments and one array write. Quantiles are
 * computed only when `stats()` is read.
 */
export class HandlerFigures {
  runs = 0
  succeeded = 0
  retried = 0
  failed = 0
  #durations: Float64Array | undefined
  #recorded = 0

  /** Counts a run that starts now; true when it should be timed. */
  started (): boolean {
    this.runs += 1
    return this.runs <= DURATION_SAMPLES || this.runs % TIME_ONE_IN === 0
  }

  ran (durationMs: number): void {
    this.#durations ??= new Float64Array(DURATION_SAMPLES)
    this.#durations[this.#recorded % DURATION_SAMPLES] = durationMs
    this.#recorded += 1
  }

  snapshot (limits: ResolvedLimits | undefined): HandlerStats {
    const kept = (this.#durations ?? new Float64Array(0)).slice(0, Math.min(this.#recorded, DURATION_SAMPLES)).sort()
    return {
      runs: this.runs,
      succeeded: this.succeeded,
      retried: this.retried,
      failed: this.failed,
      p50Ms: quantile(kept, 0.5),
      p99Ms: quantile(kept, 0.99),
      ...(limits === undefined ? {} : { limits })
    }
  }
}

/** The nearest-rank quantile of sorted values: a value that was observed, never an interpolation. */
export function quantile (sorted: Float64Array, q: number): number | undefined {
  if (sorted.length === 0) return undefined
  const value = sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
  return value === undefined ? undefined : Math.round(value * 1000) / 1000
}
