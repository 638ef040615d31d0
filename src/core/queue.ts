import type { AnyEvent } from './events.js'
import type { RegisteredHandler } from './handlers.js'
import type { InboxRuntime } from './inbox.js'
import { backoffDelay } from './backoff.js'
import { wakeOrTimeout } from './timeouts.js'
import { Slots } from './slots.js'
import { isThenable } from './thenable.js'
import type { FlowGate } from './flow/gate.js'
import { ParkedRuns } from './flow/parked.js'
import { MemoryOrderedLines } from './ordering/memory-lines.js'
import type { HandlerOrdering } from './ordering/engine.js'
import type { MemoryOrderingStore } from './ordering/memory-store.js'
import { nextMacrotask } from './next-macrotask.js'
import type { HandlerTask, OrderedRef, QueuedEvent, UnfinishedRun } from './queued-event.js'

export type { UnfinishedRun } from './queued-event.js'

/**
 * The in-process dispatcher: every handler of an event is its own task, run with
 * bounded concurrency and retried on its own, so one slow or failing handler holds
 * back neither the others nor other events. A task waiting out its backoff holds
 * no concurrency slot.
 */
export class MemoryQueue {
  readonly #runtime: InboxRuntime
  readonly #workers: Slots<HandlerTask>
  // Unfinished events as an intrusive list rather than a Set: measured with the
  // benchmark, a long-lived Set that every event passes through made V8 promote
  // the events to the old generation (a full GC every few thousand ~8 KB events);
  // unlinking leaves no trace, and the events die young. See docs/performance.md.
  #first: QueuedEvent | undefined
  #last: QueuedEvent | undefined
  #size = 0
  // Events with a handler running now, for stats() and the queue gauge.
  #running = 0
  // Events accepted since the last macrotask: one setImmediate starts them all.
  #starting: QueuedEvent[] = []
  readonly #backoffTimers = new Set<NodeJS.Timeout>()
  #idleWaiters: Array<() => void> = []
  readonly #flow: FlowGate | undefined
  readonly #parked: ParkedRuns<HandlerTask>
  readonly #ordered: MemoryOrderedLines<OrderedRef> | undefined

  constructor (runtime: InboxRuntime, orderingStore?: MemoryOrderingStore<OrderedRef>) {
    this.#runtime = runtime
    this.#workers = new Slots(runtime.options.concurrency, (task) => this.#run(task))
    this.#flow = runtime.flow
    this.#parked = new ParkedRuns((task) => { this.#workers.add(task) })
    this.#flow?.onWake((handler) => { this.#parked.wake(handler) })
    const ordering = runtime.ordering
    if (ordering !== undefined && orderingStore !== undefined) this.#ordered = new MemoryOrderedLines(ordering, orderingStore, (ref, context) => { this.#admitted(ref.queued, context) }, runtime.options.clock)
  }

  /** When the oldest unfinished event was received: the list is in acceptance order. */
  get oldestReceivedAt (): number | undefined {
    return this.#first?.receivedAt
  }

  /** Events accepted and not yet finished: waiting, running or backing off. */
  get size (): number {
    return this.#size
  }

  /** Events with at least one handler running now. */
  get running (): number {
    return this.#running
  }

  /** Resolves when no accepted event is waiting, running or backing off. */
  idle (): Promise<void> {
    if (this.#size === 0) return Promise.resolve()
    return new Promise((resolve) => { this.#idleWaiters.push(resolve) })
  }

  /**
   * Queues an event's handlers. `waitUntil`, when given, is handed a promise that
   * settles once they have all finished (done, dead-lettered, or cut off by
   * close()); it must not throw.
   */
  push (event: AnyEvent, receivedAt: number, handlers: readonly RegisteredHandler[], whenAnswered?: (callback: () => void) => void, waitUntil?: (handlersFinished: Promise<void>) => void): void {
    if (handlers.length === 0) {
      this.#runtime.logger.info({ event: { id: event.id, type: event.type } }, 'no handler for event type')
      return
    }
    const queued: QueuedEvent = { event, receivedAt, tasks: [], unsettled: 0, running: 0, whenAnswered, finished: undefined, listed: true, previous: this.#last, next: undefined, ordered: undefined, dead: false }
    // A snapshot: the set of handlers to run is fixed at accept time, so a handler
    // registered meanwhile cannot run untracked (unseen by close()).
    for (const handler of handlers.length === 1 ? handlers : new Set(handlers)) {
      queued.tasks.push({ queued, event, handler, receivedAt, attempt: 0, settled: false, started: 0, woken: false, release: undefined, deferrals: undefined, ordering: undefined })
    }
    // The key is computed once, here: after verification and dedupe, before the answer.
    const ref = this.#ordered === undefined ? undefined : this.#runtime.ordering?.refFor(event, receivedAt)
    if (ref !== undefined) this.#ordered?.accepted(queued.ordered = { ...ref, ready: false, queued })
    queued.unsettled = queued.tasks.length
    if (this.#last === undefined) this.#first = queued
    else this.#last.next = queued
    this.#last = queued
    this.#size += 1
    // Called in the request that accepted the event: on Workers, waitUntil belongs to it.
    if (waitUntil !== undefined) waitUntil(new Promise<void>((resolve) => { queued.finished = resolve }))
    // A macrotask: the adapter writes the 2xx in a microtask after accept
    // returns, so the answer is on its way before any handler code runs. Where the
    // framework may delay that write, the adapter says when it happened.
    if (this.#starting.push(queued) === 1) nextMacrotask(this.#startAccepted)
  }

  // Asks `whenAnswered` only now, on the next macrotask, when the answer is
  // usually written already, so the common case adds no listener to the response.
  readonly #startAccepted = (): void => {
    const accepted = this.#starting
    this.#starting = []
    for (const queued of accepted) {
      if (queued.whenAnswered === undefined) this.#start(queued)
      else queued.whenAnswered(() => { this.#start(queued) })
    }
  }

  #start (queued: QueuedEvent): void {
    if (queued.ordered !== undefined) this.#ordered?.ready(queued.ordered)
    else for (const task of queued.tasks) this.#schedule(task, 1)
  }

  /** The event took its key: its handlers run, told where it stands; or, stale and `skipStale`, it is done unrun. */
  #admitted (queued: QueuedEvent, ordering: HandlerOrdering): void {
    const skip = this.#runtime.ordering?.skips(ordering) === true
    for (const task of queued.tasks) {
      task.ordering = ordering
      if (skip) task.settled = true
      else this.#schedule(task, 1)
    }
    if (skip) this.#unlink(queued)
  }

  #schedule (task: HandlerTask, attempt: number): void {
    if (!task.queued.listed) return
    task.attempt = attempt
    this.#workers.add(task)
  }

  /**
   * Runs a task once. True when it ended synchronously; otherwise its slot is
   * released when the handler's promise settles (or, when it failed for good,
   * once it is dead-lettered).
   */
  #run (task: HandlerTask): boolean {
    const { queued } = task
    if (!queued.listed) return true
    if (this.#flow !== undefined) {
      // Not admitted (paused, at its concurrency or rate): parked, no attempt used.
      task.release = this.#parked.admit(task, this.#flow)
      if (task.release === undefined) return true
    }
    task.started = task.attempt
    if (queued.running++ === 0) this.#running += 1
    let returned: unknown
    try {
      returned = this.#runtime.runHandler(task)
    } catch (error) {
      return this.#releaseAfter(this.#failed(task, error))
    }
    if (!isThenable(returned)) {
      this.#succeeded(task)
      return true
    }
    Promise.resolve(returned).then(() => {
      this.#succeeded(task)
      this.#workers.release()
    }, (error: unknown) => {
      if (this.#releaseAfter(this.#failed(task, error))) this.#workers.release()
    })
    return false
  }

  /** True when there is nothing to wait for; else the slot is released once `pending` settles. */
  #releaseAfter (pending: Promise<void> | undefined): boolean {
    if (pending === undefined) return true
    pending.then(this.#workers.release, this.#workers.release)
    return false
  }

  #ended (queued: QueuedEvent): void {
    if (--queued.running === 0) this.#running -= 1
  }

  #succeeded (task: HandlerTask): void {
    this.#ended(task.queued)
    task.release?.()
    // A run that ended after shutdown aborted it was cut short, whether it threw
    // or returned: it stays unsettled, and close() dead-letters it as `shutdown`,
    // as the durable inboxes leave such an attempt unrecorded.
    if (this.#runtime.signal.aborted) return
    this.#runtime.handlerSucceeded(task)
    this.#settle(task)
  }

  #failed (task: HandlerTask, error: unknown): Promise<void> | undefined {
    this.#ended(task.queued)
    task.release?.()
    if (!task.queued.listed || this.#runtime.signal.aborted) return undefined
    const { attempt } = task
    const later = this.#flow?.retryLater(task.handler.name, error, task.deferrals, Date.now())
    if (later !== undefined) {
      // Deferred, not failed: the same attempt runs again later.
      task.deferrals = later.record
      this.#later(later.deferMs, () => { this.#schedule(task, attempt) })
      return undefined
    }
    const { retry } = this.#runtime.options
    if (attempt < retry.attempts) {
      const delay = backoffDelay(attempt, retry)
      this.#runtime.handlerRetrying(task, error, delay)
      this.#later(delay, () => { this.#schedule(task, attempt + 1) })
      return undefined
    }
    task.queued.dead = true
    return this.#runtime.handlerFailed(task, error).then(() => { this.#settle(task) })
  }

  #later (delayMs: number, then: () => void): void {
    const timer = setTimeout(() => {
      this.#backoffTimers.delete(timer)
      then()
    }, delayMs)
    this.#backoffTimers.add(timer)
  }

  #settle (task: HandlerTask): void {
    if (task.settled) return
    task.settled = true
    const { queued } = task
    queued.unsettled -= 1
    if (queued.unsettled > 0 || !queued.listed) return
    this.#unlink(queued)
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
    queued.finished?.()
    if (queued.ordered !== undefined) this.#ordered?.finished(queued.ordered, queued.dead ? 'dead' : 'handled')
    if (this.#size === 0 && this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters
      this.#idleWaiters = []
      for (const wake of waiters) wake()
    }
  }

  /**
   * Waits for every event to finish, up to `graceMs`. What is left then is taken
   * out of the queue and returned, so the caller can dead-letter it: nothing
   * accepted is dropped without a word.
   */
  async drain (graceMs: number): Promise<UnfinishedRun[]> {
    if (this.#size > 0) {
      await wakeOrTimeout(graceMs, (wake) => { this.#idleWaiters.push(wake) })
    }
    for (const timer of this.#backoffTimers) clearTimeout(timer)
    this.#backoffTimers.clear()
    this.#parked.clear()
    this.#ordered?.close()
    this.#workers.clear()
    const left: UnfinishedRun[] = []
    while (this.#first !== undefined) {
      const queued = this.#first
      for (const task of queued.tasks) {
        if (!task.settled) left.push({ event: queued.event, receivedAt: queued.receivedAt, handler: task.handler, attempts: task.started })
      }
      this.#unlink(queued)
    }
    return left
  }
}
