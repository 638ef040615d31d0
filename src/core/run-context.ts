import type { AnyEvent } from './events.js'
import type { HandlerContext } from './handlers.js'
import type { HandlerRun } from './inbox.js'
import type { WebhookLogger } from './logger.js'

/**
 * The handler's context. Its child logger and its Date are made on first use: a
 * pino child costs microseconds, and most handlers on the hot path never log. A class, so
 * the getters live on the prototype and each context is a plain small object.
 */
export class RunContext implements HandlerContext {
  readonly attempt: number
  readonly signal: AbortSignal
  // declare: no own property on the hot path's contexts, only on a dry run's.
  declare readonly replay?: { dryRun: boolean }
  readonly #event: AnyEvent
  readonly #receivedAt: number
  readonly #logger: WebhookLogger
  #receivedAtDate: Date | undefined
  #log: WebhookLogger | undefined

  constructor (run: HandlerRun, signal: AbortSignal, logger: WebhookLogger) {
    this.attempt = run.attempt
    this.signal = signal
    if (run.replay !== undefined) this.replay = run.replay
    this.#event = run.event
    this.#receivedAt = run.receivedAt
    this.#logger = logger
  }

  get receivedAt (): Date {
    this.#receivedAtDate ??= new Date(this.#receivedAt)
    return this.#receivedAtDate
  }

  get log (): WebhookLogger {
    this.#log ??= this.#logger.child({ event: eventTag(this.#event) })
    return this.#log
  }
}

/** How an event is named in every log line: never its data. */
export function eventTag (event: AnyEvent): { id: string, type: string } {
  return { id: event.id, type: event.type }
}
