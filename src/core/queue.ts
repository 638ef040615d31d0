import PQueue from 'p-queue'
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
}

/**
 * The in-process dispatcher: every handler of an event is its own task, run with
 * bounded concurrency and retried on its own, so one slow or failing handler holds
 * back neither the others nor other events. A task waiting out its backoff holds
 * no concurrency slot.
 */
export class MemoryQueue {
  readonly #runtime: InboxRuntime
  readonly #workers: PQueue
  readonly #events = new Set<QueuedEvent>()
  readonly #backoffTimers = new Set<NodeJS.Timeout>()
  #whenEmpty: (() => void) | undefined

  constructor (runtime: InboxRuntime) {
    this.#runtime = runtime
    this.#workers = new PQueue({ concurrency: runtime.options.concurrency })
  }

  /** Events accepted and not yet finished: waiting, running or backing off. */
  get size (): number {
    return this.#events.size
  }

  push (event: AnyEvent, receivedAt: number, handlers: readonly RegisteredHandler[]): void {
    if (handlers.length === 0) {
      this.#runtime.logger.debug({ event: { id: event.id, type: event.type } }, 'no handler for event type')
      return
    }
    const queued: QueuedEvent = { event, receivedAt, unsettled: new Set(handlers), attempts: new Map() }
    this.#events.add(queued)
    // setImmediate: the adapter writes the 2xx in a microtask after accept
    // returns, so the answer is on its way before any handler code runs.
    setImmediate(() => {
      for (const handler of handlers) this.#schedule(queued, handler, 1)
    })
  }

  #schedule (queued: QueuedEvent, handler: RegisteredHandler, attempt: number): void {
    if (!this.#events.has(queued)) return
    queued.attempts.set(handler, attempt)
    this.#workers.add(async () => { await this.#run(queued, handler, attempt) }).catch(() => {
      // #run never rejects; this only silences p-queue's own promise.
    })
  }

  async #run (queued: QueuedEvent, handler: RegisteredHandler, attempt: number): Promise<void> {
    if (!this.#events.has(queued)) return
    const run: HandlerRun = { event: queued.event, handler, attempt, receivedAt: queued.receivedAt }
    try {
      await this.#runtime.runHandler(run)
    } catch (error) {
      if (!this.#events.has(queued)) return
      const { retry } = this.#runtime.options
      if (attempt < retry.attempts && !this.#runtime.signal.aborted) {
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
    }
    this.#settle(queued, handler)
  }

  #settle (queued: QueuedEvent, handler: RegisteredHandler): void {
    queued.unsettled.delete(handler)
    if (queued.unsettled.size > 0 || !this.#events.delete(queued)) return
    if (this.#events.size === 0 && this.#whenEmpty !== undefined) this.#whenEmpty()
  }

  /**
   * Waits for every event to finish, up to `graceMs`. What is left then is taken
   * out of the queue and returned, so the caller can dead-letter it: nothing
   * accepted is dropped without a word.
   */
  async drain (graceMs: number): Promise<Array<{ queued: QueuedEvent, handlers: RegisteredHandler[] }>> {
    if (this.#events.size > 0) {
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
    const left = [...this.#events].map((queued) => ({ queued, handlers: [...queued.unsettled] }))
    this.#events.clear()
    return left
  }

  attemptsOf (queued: QueuedEvent, handler: RegisteredHandler): number {
    return queued.attempts.get(handler) ?? 0
  }
}
