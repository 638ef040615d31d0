import type { AnyEvent } from './events.js'
import type { RegisteredHandler } from './handlers.js'
import type { HandlerRun, InboxRuntime } from './inbox.js'
import type { HandlerOrdering } from './ordering/engine.js'

export interface KeyedHandler {
  handler: RegisteredHandler
  /**
   * The handler's name, with `#2`, `#3`… for later handlers of the same name. A
   * durable inbox stores these to know which handlers already succeeded; a name
   * survives a restart and a redeploy, an object identity does not.
   */
  key: string
}

export interface AttemptFailure extends KeyedHandler {
  error: unknown
}

export interface AttemptResult {
  /** Keys of every handler that has succeeded, in this attempt or before. */
  succeeded: string[]
  failures: AttemptFailure[]
}

export function keyedHandlers (handlers: readonly RegisteredHandler[]): KeyedHandler[] {
  const seen = new Map<string, number>()
  return handlers.map((handler) => {
    const count = (seen.get(handler.name) ?? 0) + 1
    seen.set(handler.name, count)
    return { handler, key: count === 1 ? handler.name : `${handler.name}#${count}` }
  })
}

/**
 * One attempt of one event, for inboxes that retry per event: runs, side by side,
 * every handler that has not yet succeeded. At-least-once: a handler that
 * succeeded in an attempt cut short by a crash runs again.
 */
export async function runAttempt (runtime: InboxRuntime, event: AnyEvent, receivedAt: number, attempt: number, succeededBefore: Iterable<string>, ordering?: HandlerOrdering): Promise<AttemptResult> {
  const done = new Set(succeededBefore)
  const keyed = keyedHandlers(runtime.handlersFor(event.type))
  const pending = keyed.filter(({ key }) => !done.has(key))
  const runs: HandlerRun[] = pending.map(({ handler }) => ({ event, handler, attempt, receivedAt, ordering }))
  // async: a synchronous handler's throw becomes this handler's rejection, not the attempt's.
  const settled = await Promise.allSettled(runs.map(async (run) => { await runtime.runHandler(run) }))
  const failures: AttemptFailure[] = []
  settled.forEach((result, index) => {
    const keyed = pending[index]
    const run = runs[index]
    if (keyed === undefined || run === undefined) return
    if (result.status === 'fulfilled') {
      done.add(keyed.key)
      runtime.handlerSucceeded(run)
    } else {
      failures.push({ ...keyed, error: result.reason })
    }
  })
  return { succeeded: [...done], failures }
}

/**
 * Reports the failures of an attempt: a warning per handler when the event will
 * be retried, `onError` and `onDeadLetter` (through the runtime, as the memory
 * inbox does) when it will not.
 */
export async function reportFailures (runtime: InboxRuntime, event: AnyEvent, receivedAt: number, attempt: number, failures: readonly AttemptFailure[], retryInMs: number | undefined, ordering?: HandlerOrdering): Promise<void> {
  for (const { handler, error } of failures) {
    const run: HandlerRun = { event, handler, attempt, receivedAt, ordering }
    if (retryInMs === undefined) await runtime.handlerFailed(run, error)
    else runtime.handlerRetrying(run, error, retryInMs)
  }
}
