import { keyedHandlers, type AttemptFailure, type AttemptResult } from '../attempt.js'
import type { AnyEvent } from '../events.js'
import type { HandlerRun, InboxRuntime } from '../inbox.js'
import type { HandlerOrdering } from '../ordering/engine.js'
import { isDeferral, type DeferReason, type DeferralRecord, type FlowGate } from './gate.js'

export interface DeferredRun {
  /** The handler's key (its name, `#2`… for a second of the same name). */
  key: string
  /** The handler's name: what its limits and pause are kept by. */
  handler: string
  reason: DeferReason
  retryInMs: number
}

export interface FlowAttemptResult extends AttemptResult {
  /** Handlers that did not run now, or threw RetryLater within its bound: not failures, no attempt used. */
  deferred: DeferredRun[]
  /** RetryLater records by handler key, to keep with the event until its handlers succeed. */
  deferrals: Record<string, DeferralRecord>
  /** Tokens reserved, by handler key: when (ms since the epoch) each is this event's. Kept with the event. */
  reserved: Record<string, number>
}

/** What an event carries between attempts for flow control. */
export interface FlowCarry {
  deferrals?: Readonly<Record<string, DeferralRecord>> | undefined
  reserved?: Readonly<Record<string, number>> | undefined
}

/**
 * How late a reserved token is still used: one token interval (at least a
 * timer's jitter). Later than that (a lag, a stalled event loop), the jobs whose
 * tokens fell due meanwhile would all run at once, above the rate; each asks for
 * a fresh token instead, and the one reserved is left unused (slower, never faster).
 */
export const RESERVATION_MIN_GRACE_MS = 20

export function reservationGraceMs (perSecond: number | undefined): number {
  return perSecond === undefined ? RESERVATION_MIN_GRACE_MS : Math.max(RESERVATION_MIN_GRACE_MS, 1000 / perSecond)
}

/** How long a run waits when the store could not be asked. */
export const STORE_RETRY_MS = 1_000

/**
 * One attempt of one event with flow control, for inboxes that run an event's
 * handlers together and retry per event (BullMQ and SQLite; Postgres next):
 * each handler that has not succeeded is admitted by the gate, run, or deferred.
 * The inbox then stores `succeeded` and `deferrals` and, when nothing failed but
 * something was deferred, puts the event back for the earliest `retryInMs`
 * without counting an attempt.
 */
export async function runFlowAttempt (
  runtime: InboxRuntime,
  gate: FlowGate,
  run: { event: AnyEvent, receivedAt: number, attempt: number, ordering?: HandlerOrdering | undefined },
  succeededBefore: Iterable<string>,
  carried: FlowCarry = {}
): Promise<FlowAttemptResult> {
  const { event, receivedAt, attempt, ordering } = run
  const done = new Set(succeededBefore)
  const pending = keyedHandlers(runtime.handlersFor(event.type)).filter(({ key }) => !done.has(key))
  const failures: AttemptFailure[] = []
  const deferred: DeferredRun[] = []
  const deferrals: Record<string, DeferralRecord> = {}
  const reserved: Record<string, number> = {}
  for (const { key } of pending) {
    const record = carried.deferrals?.[key]
    if (record !== undefined) deferrals[key] = record
    const at = carried.reserved?.[key]
    if (at !== undefined) reserved[key] = at
  }
  await Promise.all(pending.map(async (keyed) => {
    const now = Date.now()
    const at = reserved[keyed.key]
    if (at !== undefined && at - now > 5) {
      // Back early (another handler of the event was due sooner): its token is still ahead.
      deferred.push({ key: keyed.key, handler: keyed.handler.name, reason: 'rate', retryInMs: at - now })
      return
    }
    const holdsToken = at !== undefined && now - at <= reservationGraceMs(keyed.handler.limits?.rate?.perSecond)
    if (at !== undefined && !holdsToken) delete reserved[keyed.key]
    // Reserving: a job put back comes back to its own token, not to a race for the next one.
    let admission: Awaited<ReturnType<FlowGate['admit']>>
    try {
      admission = await gate.admit(keyed.handler, { reserve: true, holdsToken })
    } catch (error) {
      // The store did not answer (Redis down): not the handler's failure, so no attempt used.
      runtime.logger.warn({ err: error, handler: keyed.handler.name }, 'flow control could not ask its store; the run is put off')
      deferred.push({ key: keyed.key, handler: keyed.handler.name, reason: 'rate', retryInMs: STORE_RETRY_MS })
      return
    }
    if (isDeferral(admission)) {
      if (admission.reserved === true) reserved[keyed.key] = now + admission.retryInMs
      deferred.push({ key: keyed.key, handler: keyed.handler.name, reason: admission.reason, retryInMs: admission.retryInMs })
      return
    }
    delete reserved[keyed.key]
    const handlerRun: HandlerRun = { event, handler: keyed.handler, attempt, receivedAt, ordering }
    try {
      await runtime.runHandler(handlerRun)
      done.add(keyed.key)
      delete deferrals[keyed.key]
      runtime.handlerSucceeded(handlerRun)
    } catch (error) {
      const later = gate.retryLater(keyed.handler.name, error, deferrals[keyed.key], Date.now())
      if (later === undefined) {
        failures.push({ ...keyed, error })
      } else {
        deferrals[keyed.key] = later.record
        deferred.push({ key: keyed.key, handler: keyed.handler.name, reason: 'retryLater', retryInMs: later.deferMs })
      }
    } finally {
      admission.release()
    }
  }))
  return { succeeded: [...done], failures, deferred, deferrals, reserved }
}

/** When to run an event again whose runs were all deferred: the earliest of them. */
export function earliestRetry (deferred: readonly DeferredRun[]): number {
  return deferred.reduce((earliest, run) => Math.min(earliest, run.retryInMs), Infinity)
}
