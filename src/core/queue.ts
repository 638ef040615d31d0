import type { AnyEvent } from './events.js'
import type { RegisteredHandler } from './handlers.js'
import type { HandlerRun, InboxRuntime } from './inbox.js'
import { backoffDelay } from './backoff.js'

interface QueuedEvent {
  event: AnyEvent
  receivedAt: number
  /** Handlers not yet settled (succeeded or failed for good). */
  unsettled: Set<RegisteredHandler>
  attempts: Map<RegisteredHandler, number>
  /** In the list of unfinished events; false once it finished or was drained. */
  listed: boolean
  previous: QueuedEvent | undefined
  next: QueuedEvent | undefined
}

// setImmediate where the runtime has it (Node, Bun, Deno); Workers and Edge
// runtimes have only setTimeout, which is also a macrotask.
const nextMacrotask: (task: () => void) => void = typeof setImmediate === 'function'
  ? (task) => { setImmediate(task) }
  : (task) => { setTimeout(task, 0) }

/**
 * At most `concurrency` tasks at once, the rest waiting first in, first out. It
 * replaces p-queue here: the queue only ever adds and clears, and p-queue's
 * per-task bookkeeping (ids, events, timeouts, abort signals) was a measurable
 * share of a no-op delivery's cost (docs/performance.md).
 */
class Slots {
  readonly #concurrency: number
  #running = 0
  #waiting: Array<() => Promise<void>> = []

  constructor (concurrency: number) {
    this.#concurrency = concurrency
  }

  /** Starts the task now if a slot is free, else when one frees up. The task must not reject. */
  add (task: () => Promise<void>): void {
    if (this.#running < this.#concurrency) this.#start(task)
    else this.#waiting.push(task)
  }

  /** Drops the tasks not yet started; running ones finish on their own. */
  clear (): void {
    this.#waiting = []
  }

  #start (task: () => Promise<void>): void {
    this.#running += 1
    task().then(this.#finished, this.#finished)
  }

  readonly #finished = (): void => {
    this.#running -= 1
    const next = this.#waiting.shift()
    if (next !== undefined) this.#start(next)
  }
}

/**
 * The in-process dispatcher: every handler of an event is its own task, run with
 * bounded concurrency and retried on its own, so one slow or failing handler holds
 * back neither the others nor other events. A task waiting out its backoff holds
 * no concurrency slot.
 */
export class MemoryQueue {
  readonly #runtime: InboxRuntime
  readonly #workers: Slots
  // Unfinished events as an intrusive list rather than a Set: measured with the
  // benchmark, a long-lived Set that every event passes through made V8 promote
  // the events to the old generation (a full GC every few thousand ~8 KB events);
  // unlinking leaves no trace, and the events die young. See docs/performance.md.
  #first: QueuedEvent | undefined
  #last: QueuedEvent | undefined
  #size = 0
  readonly #backoffTimers = new Set<NodeJS.Timeout>()
  #whenEmpty: (() => void) | undefined

  constructor (runtime: InboxRuntime) {
    this.#runtime = runtime
    this.#workers = new Slots(runtime.options.concurrency)
  }

  /** Events accepted and not yet finished: waiting, running or backing off. */
  get size (): number {
    return this.#size
  }

  push (event: AnyEvent, receivedAt: number, handlers: readonly RegisteredHandler[], whenAnswered?: (callback: () => void) => void): void {
    if (handlers.length === 0) {
      this.#runtime.logger.info({ event: { id: event.id, type: event.type } }, 'no handler for event type')
      return
    }
    // A snapshot: the set of handlers to run is fixed at accept time, so a handler
    // registered meanwhile cannot run untracked (outside `unsettled`, unseen by close()).
    const snapshot = [...new Set(handlers)]
    const queued: QueuedEvent = { event, receivedAt, unsettled: new Set(snapshot), attempts: new Map(), listed: true, previous: this.#last, next: undefined }
    if (this.#last === undefined) this.#first = queued
    else this.#last.next = queued
    this.#last = queued
    this.#size += 1
    // A macrotask: the adapter writes the 2xx in a microtask after accept
    // returns, so the answer is on its way before any handler code runs. Where the
    // framework may delay that write, the adapter says when it happened.
    const start = (): void => {
      for (const handler of snapshot) this.#schedule(queued, handler, 1)
    }
    // Asked only on the next macrotask, when the answer is usually written
    // already, so the common case adds no listener to the response.
    nextMacrotask(whenAnswered === undefined ? start : () => { whenAnswered(start) })
  }

  #schedule (queued: QueuedEvent, handler: RegisteredHandler, attempt: number): void {
    if (!queued.listed) return
    queued.attempts.set(handler, attempt)
    this.#workers.add(() => this.#run(queued, handler, attempt))
  }

  async #run (queued: QueuedEvent, handler: RegisteredHandler, attempt: number): Promise<void> {
    if (!queued.listed) return
    const run: HandlerRun = { event: queued.event, handler, attempt, receivedAt: queued.receivedAt }
    try {
      await this.#runtime.runHandler(run)
    } catch (error) {
      if (!queued.listed || this.#runtime.signal.aborted) return
      const { retry } = this.#runtime.options
      if (attempt < retry.attempts) {
        const delay = backoffDelay(attempt, retry)
        this.#runtime.logger.warn({ event: { id: queued.event.id, type: queued.event.type }, handler: handler.name, attempt, retryInMs: delay, err: error }, 'handler failed; will retry')
        const timer = setTimeout(() => {
          this.#backoffTimers.delete(timer)
          this.#schedule(queued, handler, attempt + 1)
        }, delay)
        this.#backoffTimers.add(timer)
        return
      }
      await this.#runtime.handlerFailed(run, error)
      this.#settle(queued, handler)
      return
    }
    // A run that ended after shutdown aborted it was cut short, whether it threw
    // (above) or returned: it stays unsettled, and close() dead-letters it as
    // `shutdown`, as the durable inboxes leave such an attempt unrecorded.
    if (this.#runtime.signal.aborted) return
    this.#settle(queued, handler)
  }

  #settle (queued: QueuedEvent, handler: RegisteredHandler): void {
    queued.unsettled.delete(handler)
    if (queued.unsettled.size > 0 || !queued.listed) return
    this.#unlink(queued)
    if (this.#size === 0 && this.#whenEmpty !== undefined) this.#whenEmpty()
  }

  #unlink (queued: QueuedEvent): void {
    const { previous, next } = queued
    if (previous === undefined) this.#first = next
    else previous.next = next
    if (next === undefined) this.#last = previous
    else next.previous = previous
    queued.listed = false
    queued.previous = undefined
    queued.next = undefined
    this.#size -= 1
  }

  /**
   * Waits for every event to finish, up to `graceMs`. What is left then is taken
   * out of the queue and returned, so the caller can dead-letter it: nothing
   * accepted is dropped without a word.
   */
  async drain (graceMs: number): Promise<Array<{ queued: QueuedEvent, handlers: RegisteredHandler[] }>> {
    if (this.#size > 0) {
      let timer: NodeJS.Timeout | undefined
      await new Promise<void>((resolve) => {
        this.#whenEmpty = resolve
        timer = setTimeout(resolve, graceMs)
      })
      clearTimeout(timer)
      this.#whenEmpty = undefined
    }
    for (const timer of this.#backoffTimers) clearTimeout(timer)
    this.#backoffTimers.clear()
    this.#workers.clear()
    const left: Array<{ queued: QueuedEvent, handlers: RegisteredHandler[] }> = []
    while (this.#first !== undefined) {
      const queued = this.#first
      left.push({ queued, handlers: [...queued.unsettled] })
      this.#unlink(queued)
    }
    return left
  }

  attemptsOf (queued: QueuedEvent, handler: RegisteredHandler): number {
    return queued.attempts.get(handler) ?? 0
  }
}
