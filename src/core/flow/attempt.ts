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
 * The longest wait for a start that a run holding its reserved token sits out
 * in the process rather than being put back (a wait is at most one token
 * interval: another run took the start). Put back, it would come back behind
 * the store's own lag (BullMQ's delayed jobs queue behind new ones); waited
 * here, it starts on the token. Longer waits (rates under 4/s) are put back.
 */
export const HELD_WAIT_MAX_MS = 250

/** The time and the waits of an attempt: the system's, or a test's virtual clock. */
export interface FlowClock {
  now: () => number
  sleep: (ms: number) => Promise<void>
}

const SYSTEM_CLOCK: FlowClock = {
  now: Date.now,
  sleep: async (ms) => { await new Promise((resolve) => setTimeout(resolve, ms)) }
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
  carried: FlowCarry = {},
  clock: FlowClock = SYSTEM_CLOCK
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
    const now = clock.now()
    const at = reserved[keyed.key]
    if (at !== undefined && at - now > 5) {
      // Back early (another handler of the event was due sooner): its token is still ahead.
      deferred.push({ key: keyed.key, handler: keyed.handler.name, reason: 'rate', retryInMs: at - now })
      return
    }
    // Reserving: a job put back comes back to its own token, not to a race for
    // the next one. A token reserved is kept however late the job comes back:
    // the start it still needs keeps the late ones from starting together.
    const holdsToken = at !== undefined
    let admission: Awaited<ReturnType<FlowGate['admit']>>
    try {
      admission = await gate.admit(keyed.handler, { reserve: true, holdsToken })
      let waited = 0
      while (isDeferral(admission) && admission.held === true && admission.retryInMs <= HELD_WAIT_MAX_MS && waited < HELD_WAIT_MAX_MS && !runtime.signal.aborted) {
        await clock.sleep(admission.retryInMs)
        waited += admission.retryInMs
        admission = await gate.admit(keyed.handler, { holdsToken: true })
      }
    } catch (error) {
      // The store did not answer (Redis down): not the handler's failure, so no attempt used.
      runtime.logger.warn({ err: error, handler: keyed.handler.name }, 'flow control could not ask its store; the run is put off')
      deferred.push({ key: keyed.key, handler: keyed.handler.name, reason: 'rate', retryInMs: STORE_RETRY_MS })
      return
    }
    if (isDeferral(admission)) {
      if (admission.reserved === true) reserved[keyed.key] = admission.held === true ? (at ?? now) : now + admission.retryInMs
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
      const later = gate.retryLater(keyed.handler.name, error, deferrals[keyed.key], clock.now())
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
