// The attempt log a BullMQ job keeps in its data: each failed and deferred handler run,
// what `outcome(id).attemptLog` answers (the dashboard's history). Written with the
// data update each failure and each put-back makes already: no extra round trip.
import type { AttemptFailure } from '../core/attempt.js'
import type { DeferredRun } from '../core/flow/attempt.js'
import { errorSummary, type AttemptRecord } from '../core/outcome.js'

/** An `AttemptRecord` as JSON keeps it: `at` in ms since the epoch. */
export interface StoredAttempt {
  handler: string
  attempt: number
  at: number
  outcome: 'failed' | 'deferred'
  error: string
}

/** Records kept per job, the newest: enough for a history, small enough for every data rewrite. */
export const ATTEMPT_LOG_SIZE = 50

/** Errors are cut shorter than `lastError`'s 1 000: fifty of them travel with every rewrite of the job's data. */
const ERROR_LENGTH = 300

function deferredWhy (run: DeferredRun): string {
  // What RetryLater's own message says, so the log reads as the handler's words.
  if (run.reason === 'retryLater') return `RetryLater: the handler asked to be run again in ${run.retryInMs} ms`
  return `deferred: ${run.reason === 'rate' ? 'over its rate' : run.reason === 'concurrency' ? 'at its concurrency' : 'paused'}`
}

/**
 * The log with this attempt's failures and deferrals added, oldest first, the
 * newest `ATTEMPT_LOG_SIZE` kept. A handler put off again for the same reason
 * (paused, rate, concurrency: it did not run) moves its last such record
 * forward rather than adding one, so a long pause or a paced backlog cannot
 * push the failures out of the log.
 */
export function withAttempts (log: readonly StoredAttempt[] | undefined, attempt: number, failures: readonly AttemptFailure[], deferred: readonly DeferredRun[], at: number): StoredAttempt[] {
  const next = [...(log ?? [])]
  for (const failure of failures) {
    next.push({ handler: failure.key, attempt, at, outcome: 'failed', error: errorSummary(failure.error, ERROR_LENGTH) })
  }
  for (const run of deferred) {
    const record: StoredAttempt = { handler: run.key, attempt, at, outcome: 'deferred', error: deferredWhy(run) }
    if (run.reason !== 'retryLater') {
      const last = next.findLastIndex((entry) => entry.handler === run.key)
      if (last !== -1 && next[last]?.outcome === 'deferred' && next[last]?.error === record.error) next.splice(last, 1)
    }
    next.push(record)
  }
  return next.slice(-ATTEMPT_LOG_SIZE)
}

export function attemptRecords (log: readonly StoredAttempt[] | undefined): AttemptRecord[] | undefined {
  return log?.map((entry) => ({ ...entry, at: new Date(entry.at) }))
}
