import type { DeadLetter } from './handlers.js'
import type { HandlerRun, InboxRuntime } from './inbox.js'
import type { WebhookLogger } from './logger.js'
import type { ResolvedOptions } from './options.js'
import type { HandlerRegistry } from './registry.js'
import { eventTag, RunContext } from './run-context.js'
import type { FlowGate } from './flow/gate.js'
import type { OrderingEngine } from './ordering/engine.js'
import { isRetryLater } from './flow/retry-later.js'
import type { ReceiverStats } from './stats.js'
import { isThenable } from './thenable.js'
import type { Telemetry } from './telemetry.js'

/**
 * What an inbox is given to run handlers with: the handlers for a type, one call
 * of one handler with its context, and where failures go (`onError`, then
 * `onDeadLetter`). Calls run one way, inbox to runtime to handler: the inbox
 * never reaches back into the receiver.
 */
export class HandlerRuntime<Extra extends object = object> implements InboxRuntime<Extra> {
  readonly options: ResolvedOptions
  readonly logger: WebhookLogger
  readonly #registry: HandlerRegistry
  readonly #stats: ReceiverStats
  // Undefined unless telemetry is on: a run then costs one field check.
  readonly #telemetry: Telemetry | undefined
  // Made on first use: Workers forbid an AbortController at module scope, where a
  // receiver is usually built.
  #shutdown: AbortController | undefined
  readonly flow: FlowGate | undefined
  readonly ordering: OrderingEngine | undefined
  /** Said once: this inbox cannot defer, so RetryLater used an attempt. */
  #retryLaterWarned = false

  constructor (options: ResolvedOptions, logger: WebhookLogger, registry: HandlerRegistry, stats: ReceiverStats, telemetry: Telemetry | undefined, flow?: FlowGate, ordering?: OrderingEngine) {
    this.options = options
    this.logger = logger
    this.#registry = registry
    this.#stats = stats
    this.#telemetry = telemetry
    this.flow = flow
    this.ordering = ordering
  }

  /** Aborted when `close()` runs out of its grace period. */
  get signal (): AbortSignal {
    this.#shutdown ??= new AbortController()
    return this.#shutdown.signal
  }

  /** Tells running handlers to stop; their events are then dead-lettered or left for another process. */
  abort (reason: Error): void {
    this.#shutdown ??= new AbortController()
    this.#shutdown.abort(reason)
  }

  get hasHandlers (): boolean {
    return this.#registry.hasHandlers
  }

  handlersFor (type: string): ReturnType<HandlerRegistry['handlersFor']> {
    return this.#registry.handlersFor(type)
  }

  runHandler (run: HandlerRun, extra?: Extra): unknown {
    const figures = this.#stats.handler(run.handler.name)
    if (!figures.started()) return this.#invoke(run, extra)
    const started = performance.now()
    const ended = (): void => { figures.ran(performance.now() - started) }
    let returned: unknown
    try {
      returned = this.#invoke(run, extra)
    } catch (error) {
      ended()
      throw error
    }
    if (!isThenable(returned)) {
      ended()
      return returned
    }
    // A side branch for the duration, not a link in the chain: the caller waits on
    // the handler's own promise, no later than without it.
    const settled = returned instanceof Promise ? returned : Promise.resolve(returned)
    settled.then(ended, ended)
    return settled
  }

  #invoke (run: HandlerRun, extra: Extra | undefined): unknown {
    return this.#telemetry === undefined ? this.#call(run, extra) : this.#telemetry.runHandler(run, () => this.#call(run, extra))
  }

  #call (run: HandlerRun, extra: Extra | undefined): unknown {
    const context = new RunContext(run, this.#shutdown?.signal ?? this.signal, this.logger)
    return run.handler.fn(run.event, extra === undefined ? context : Object.assign(context, extra))
  }

  handlerSucceeded (run: HandlerRun): void {
    this.#stats.succeeded += 1
    this.#stats.handler(run.handler.name).succeeded += 1
  }

  handlerRetrying (run: HandlerRun, error: unknown, retryInMs: number): void {
    this.#stats.retried += 1
    this.#stats.handler(run.handler.name).retried += 1
    this.#warnRetryLater(error)
    this.logger.warn({ event: eventTag(run.event), handler: run.handler.name, attempt: run.attempt, retryInMs, err: error }, 'handler failed; will retry')
  }

  async handlerFailed (run: HandlerRun, error: unknown): Promise<void> {
    this.#stats.failed += 1
    this.#stats.handler(run.handler.name).failed += 1
    this.#warnRetryLater(error)
    const info = { handler: run.handler.name, attempts: run.attempt }
    for (const onError of this.#registry.errorHandlers) {
      await this.#callSafely('onError', run, () => onError(error, run.event, info))
    }
    await this.deadLetter({
      event: run.event,
      reason: 'handler_failed',
      handler: run.handler.name,
      error,
      attempts: run.attempt,
      receivedAt: new Date(run.receivedAt),
      ...(run.ordering === undefined ? {} : { ordering: this.ordering?.deadLetterNote(run.ordering.key) })
    })
  }

  async deadLetter (entry: DeadLetter): Promise<void> {
    this.#stats.deadLetters += 1
    this.#telemetry?.deadLettered(entry.reason)
    this.logger.error({
      event: eventTag(entry.event),
      reason: entry.reason,
      handler: entry.handler,
      attempts: entry.attempts,
      ...(entry.ordering === undefined ? {} : { ordering: entry.ordering }),
      err: entry.error
    }, entry.reason === 'shutdown' ? 'event dead-lettered: shutdown came before it finished' : 'event dead-lettered: a handler failed for good')
    for (const onDeadLetter of this.#registry.deadLetterHandlers) {
      await this.#callSafely('onDeadLetter', entry, () => onDeadLetter(entry))
    }
  }

  /** An inbox without flow control cannot defer: said once, so nobody believes a RetryLater is free there. */
  #warnRetryLater (error: unknown): void {
    if (this.flow !== undefined || this.#retryLaterWarned || !isRetryLater(error)) return
    this.#retryLaterWarned = true
    this.logger.warn({}, 'a handler threw RetryLater, but this inbox has no flow control: it counts as a failed attempt, retried with backoff ' +
      '(docs/design.md, "Flow control" says which inboxes defer it)')
  }

  async #callSafely (what: string, subject: { event: DeadLetter['event'] }, call: () => unknown): Promise<void> {
    try {
      await call()
    } catch (error) {
      this.logger.error({ err: error, event: eventTag(subject.event) }, `an ${what} callback threw`)
    }
  }
}
