// What one attempt of an event leaves in its row when flow control is on: the
// records it carries to the next attempt, its attempt log, and when it runs again.
import type { AttemptResult } from '../core/attempt.js'
import type { DeferredRun, FlowAttemptResult, FlowCarry } from '../core/flow/attempt.js'
import { nextRun as nextRunAfter } from '../core/flow/waits.js'
import { errorSummary, type AttemptRecord } from '../core/outcome.js'
import type { EventRow, Statements } from './schema.js'

/** The newest handler runs kept in an event's attempt log: a RetryLater loop must not grow a row without bound. */
export const ATTEMPT_LOG_LIMIT = 50

/** How often the pause state set by another process is read: health() and admissions see it within this. */
export const PAUSE_REFRESH_MS = 500

/** An attempt with or without flow control: the flow fields are there only with it. */
export type SqliteAttemptResult = AttemptResult & Partial<FlowAttemptResult>

/** An attempt log entry as stored: `at` in ms since the epoch. */
type StoredRecord = Omit<AttemptRecord, 'at'> & { at: number }

/** What the row carries for flow control; a record that cannot be read is dropped (the bound then starts afresh). */
export function carriedFlow (row: EventRow): FlowCarry {
  if (row.flow === null) return {}
  try {
    return JSON.parse(row.flow) as FlowCarry
  } catch {
    return {}
  }
}

/** The flow record to keep with the event, or null when there is none. */
export function flowRecord (result: SqliteAttemptResult): string | null {
  const deferrals = result.deferrals ?? {}
  const reserved = result.reserved ?? {}
  if (Object.keys(deferrals).length === 0 && Object.keys(reserved).length === 0) return null
  return JSON.stringify({ deferrals, reserved })
}

/** The row's attempt log with this attempt's failed and deferred runs added, newest 50; null when this attempt adds none. */
export function attemptLogAfter (row: EventRow, result: SqliteAttemptResult, at: number): string | null {
  const added: StoredRecord[] = [
    ...result.failures.map((failure) => ({ handler: failure.key, attempt: row.attempts, at, outcome: 'failed' as const, error: errorSummary(failure.error) })),
    ...(result.deferred ?? []).map((run) => ({ handler: run.key, attempt: row.attempts, at, outcome: 'deferred' as const, error: describeDeferral(run) }))
  ]
  if (added.length === 0) return null
  return JSON.stringify([...readLog(row), ...added].slice(-ATTEMPT_LOG_LIMIT))
}

/** The attempt log as `outcome()` returns it. */
export function attemptLog (row: EventRow): AttemptRecord[] | undefined {
  const log = readLog(row)
  return log.length === 0 ? undefined : log.map((record) => ({ ...record, at: new Date(record.at) }))
}

function readLog (row: EventRow): StoredRecord[] {
  if (row.attempt_log === null) return []
  try {
    const log = JSON.parse(row.attempt_log) as unknown
    return Array.isArray(log) ? log as StoredRecord[] : []
  } catch {
    return []
  }
}

function describeDeferral (run: DeferredRun): string {
  return `deferred (${run.reason}): runs again in ${Math.round(run.retryInMs)} ms`
}

/** When the event runs again, and which handler's deferral it waits on (the core's wait policy, flow/waits.ts). */
export function nextRun (deferred: readonly DeferredRun[], now: number): { nextAttemptAt: number, waitReason: string, waitHandler: string } {
  const { nextAttemptAt, run } = nextRunAfter(deferred, now)
  return { nextAttemptAt, waitReason: run.reason, waitHandler: run.key }
}

/**
 * Handlers deferred in an attempt that dead-letters the event (another handler
 * failed its last attempt) never ran: the dead record names them, and a redrive
 * runs them, as they are not among the event's `succeeded`.
 */
export function notRunNote (deferred: readonly DeferredRun[] | undefined): string {
  if (deferred === undefined || deferred.length === 0) return ''
  return `; not run: deferred (${deferred.map((run) => `${run.key}: ${run.reason}`).join(', ')})`
}

/**
 * An attempt whose runs were all deferred or done: the write that puts the event
 * back to wait, with no attempt used, and when it is due. A run paused by a
 * handler resumed since it was admitted was passed by that resume's wake-up: it
 * comes back once this process has read the resume.
 */
export function deferral (sql: Statements, run: { row: EventRow, owner: string, result: SqliteAttemptResult, succeeded: string, attemptLog: string | null }, now: () => number): { write: () => number, nextAttemptAt: () => number } {
  const wait = nextRun(run.result.deferred ?? [], now())
  return {
    write: () => {
      if (wait.waitReason === 'paused' && sql.flow.isPaused.get({ handler: wait.waitHandler }) === 0) wait.nextAttemptAt = now() + PAUSE_REFRESH_MS
      return sql.defer.run({ id: run.row.id, owner: run.owner, succeeded: run.succeeded, flow: flowRecord(run.result), attemptLog: run.attemptLog, ...wait }).changes
    },
    nextAttemptAt: () => wait.nextAttemptAt
  }
}
