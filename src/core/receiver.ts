import { isLogger, type WebhookLogger } from './logger.js'
import { WebhookOptionsError, type RefusalCode } from './errors.js'
import type { AnyEvent, EventName } from './events.js'
import type {
  AnyEventHandler,
  DeadLetter,
  DeadLetterHandler,
  ErrorHandler,
  EventHandler,
  HandlerContext,
  RegisteredHandler
} from './handlers.js'
import type { AcceptOutcome, HandlerRun, Inbox, InboxRuntime } from './inbox.js'
import { MemoryInbox } from './memory-inbox.js'
import { resolveOptions, type ResolvedOptions, type WebhooksOptions } from './options.js'
import { parseEnvelope } from './envelope.js'
import { ACCEPTED, DUPLICATE, isEncoded, isJsonContentType, refusalResults, type Delivery, type ReceiveResult } from './receive.js'
import type { VerifyRequest, VerifyResult } from './signature-checks.js'

type Registration = AnyEventHandler | ErrorHandler | DeadLetterHandler

const outcomeRefusal: Record<Exclude<AcceptOutcome, 'accepted' | 'duplicate'>, RefusalCode> = {
  full: 'QUEUE_FULL',
  unavailable: 'INBOX_UNAVAILABLE'
}

/**
 * What differs between runtimes: how signatures are checked (node:crypto,
 * synchronous; or Web Crypto, asynchronous) and which logger is the default.
 * Everything else about a receiver is the same code everywhere.
 */
export interface ReceiverPlatform {
  createVerifier (secrets: readonly string[]): (input: VerifyRequest) => VerifyResult | Promise<VerifyResult>
  defaultLogger (): WebhookLogger
}

/**
 * The receiver: verifies deliveries, hands accepted events to an inbox and runs
 * the handlers registered with `on`. It knows no HTTP framework; adapters read a
 * request into a `Delivery` and write back the `ReceiveResult`. Users construct
 * `Webhooks`, this class bound to their runtime's platform.
 */
export class WebhookReceiver<I extends Inbox = Inbox> {
  readonly options: ResolvedOptions
  readonly logger: WebhookLogger
  /** The inbox, typed as given: `webhooks.inbox.deadLetters()` type-checks for a durable one. */
  readonly inbox: I

  readonly #handlers = new Map<string, RegisteredHandler[]>()
  #anyHandlers: RegisteredHandler[] = []
  #errorHandlers: ErrorHandler[] = []
  #deadLetterHandlers: DeadLetterHandler[] = []
  readonly #refusals: Readonly<Record<RefusalCode, ReceiveResult>>
  readonly #verify: (input: VerifyRequest) => VerifyResult | Promise<VerifyResult>
  // Made on first use: Cloudflare Workers refuse new AbortController() in global
  // scope, where a receiver is built (one per isolate, so dedupe spans requests).
  #shutdownController: AbortController | undefined
  readonly #started: Promise<void> | undefined
  #startError: unknown
  /** The asynchronous start has ended, one way or the other. */
  #startSettled = false
  #closing: Promise<void> | undefined

  constructor (options: WebhooksOptions<I>, platform: ReceiverPlatform) {
    this.options = resolveOptions(options)
    if (options.logger !== undefined && !isLogger(options.logger)) {
      throw new WebhookOptionsError('"logger" must be a pino logger (an object with child(), debug(), info(), warn() and error())')
    }
    this.logger = options.logger ?? platform.defaultLogger()
    // Without an inbox option, I is the Inbox interface itself, which MemoryInbox is.
    this.inbox = options.inbox ?? new MemoryInbox() as Inbox as I
    this.#refusals = refusalResults(this.options.retryAfterSeconds)
    this.#verify = platform.createVerifier(this.options.secrets)
    const started = this.inbox.start(this.#runtime())
    if (started !== undefined) {
      this.#started = started.then(() => { this.#startSettled = true }, (error: unknown) => {
        this.#startError = error
        this.#startSettled = true
        this.logger.error({ err: error }, 'the inbox failed to start; deliveries are answered 503 until it does')
      })
    }
  }

  /** Registers a handler for one event type or several. Misspelt types do not compile. */
  on<K extends EventName>(type: K | readonly K[], handler: EventHandler<K>): this {
    const types: readonly string[] = typeof type === 'string' ? [type] : [...new Set(type)]
    if (types.length === 0 || types.some((name) => typeof name !== 'string' || name.length === 0)) {
      throw new WebhookOptionsError('on(type, handler): "type" must be an event type or a non-empty array of them')
    }
    const registered = this.#register(handler as AnyEventHandler, 'on')
    for (const name of types) {
      // A new array, never a push: inboxes may hold the previous list for events in flight.
      this.#handlers.set(name, [...(this.#handlers.get(name) ?? []), registered])
    }
    return this
  }

  /** Registers a handler for every event, including types this version does not know. */
  onAny (handler: AnyEventHandler): this {
    this.#anyHandlers = [...this.#anyHandlers, this.#register(handler, 'onAny')]
    return this
  }

  /** Called when a handler has failed for good (after its last attempt). */
  onError (handler: ErrorHandler): this {
    this.#assertFunction(handler, 'onError')
    this.#errorHandlers = [...this.#errorHandlers, handler]
    return this
  }

  /** Called for each handler that failed for good, and for events cut off by shutdown. */
  onDeadLetter (handler: DeadLetterHandler): this {
    this.#assertFunction(handler, 'onDeadLetter')
    this.#deadLetterHandlers = [...this.#deadLetterHandlers, handler]
    return this
  }

  /**
   * Removes a handler. `off(type, handler)` removes it from those types only;
   * `off(handler)` removes it from everything it was registered with.
   */
  off<K extends EventName>(type: K | readonly K[], handler: EventHandler<K>): this
  off (handler: Registration): this
  off (typeOrHandler: string | readonly string[] | Registration, maybeHandler?: unknown): this {
    if (typeof typeOrHandler === 'function') {
      const fn = typeOrHandler
      for (const [name, list] of this.#handlers) this.#handlers.set(name, list.filter((entry) => entry.fn !== fn))
      this.#anyHandlers = this.#anyHandlers.filter((entry) => entry.fn !== fn)
      this.#errorHandlers = this.#errorHandlers.filter((entry) => entry !== fn)
      this.#deadLetterHandlers = this.#deadLetterHandlers.filter((entry) => entry !== fn)
      return this
    }
    const types: readonly string[] = typeof typeOrHandler === 'string' ? [typeOrHandler] : typeOrHandler
    for (const name of types) {
      const list = this.#handlers.get(name)
      if (list !== undefined) this.#handlers.set(name, list.filter((entry) => entry.fn !== maybeHandler))
    }
    return this
  }

  /**
   * Resolves when nothing accepted is waiting or running: every handler done,
   * dead-lettered or cut off by close(). For serverless platforms and tests.
   * Needs an inbox that can tell (the in-memory one can).
   */
  async idle (): Promise<void> {
    if (this.#started !== undefined) await this.#started
    if (this.inbox.idle === undefined) {
      throw new WebhookOptionsError('idle(): this inbox cannot tell when its work is done (it has no idle() method)')
    }
    await this.inbox.idle()
  }

  /** True once `close()` has been called: new deliveries get 503. */
  get closing (): boolean {
    return this.#closing !== undefined
  }

  /**
   * Decides a delivery: verify, then parse, then hand to the inbox. Never rejects;
   * every outcome is an answer with a status from the contract. `log` is the
   * request's logger where the framework has one.
   */
  async receive (delivery: Delivery, log: WebhookLogger = this.logger): Promise<ReceiveResult> {
    return await this.decide(delivery, log)
  }

  /**
   * `receive`, for adapters: the answer itself when every step is synchronous (the
   * Node verifier and the in-memory inbox), a promise only when a step is not (Web
   * Crypto, a durable inbox). On the hot path that spares a promise and the
   * microtask hops before the 2xx can be written. Never throws or rejects.
   */
  decide (delivery: Delivery, log: WebhookLogger = this.logger): ReceiveResult | Promise<ReceiveResult> {
    const { rawBody } = delivery
    if (!isJsonContentType(delivery.contentType) || isEncoded(delivery.contentEncoding)) {
      return this.#refuse(log, 'UNSUPPORTED_MEDIA_TYPE', { bodyLength: rawBody.byteLength })
    }
    if (rawBody.byteLength > this.options.bodyLimit) {
      return this.#refuse(log, 'BODY_TOO_LARGE', { bodyLength: rawBody.byteLength, bodyLimit: this.options.bodyLimit })
    }
    const now = this.options.clock()
    const verified = this.#verify({
      rawBody,
      signature: delivery.signature,
      timestamp: delivery.timestamp,
      toleranceSeconds: this.options.toleranceSeconds,
      now
    })
    return verified instanceof Promise
      ? verified.then((result) => this.#verified(delivery, result, now, log))
      : this.#verified(delivery, verified, now, log)
  }

  #verified (delivery: Delivery, verified: VerifyResult, now: number, log: WebhookLogger): ReceiveResult | Promise<ReceiveResult> {
    if (!verified.ok) {
      return this.#refuse(log, verified.code, { skewSeconds: roundSkew(verified.skewSeconds), bodyLength: delivery.rawBody.byteLength })
    }
    const parsed = parseEnvelope(delivery.rawBody)
    if (!parsed.ok) return this.#refuse(log, parsed.code, { bodyLength: delivery.rawBody.byteLength })
    const { event } = parsed
    if (this.#closing !== undefined) return this.#refuse(log, 'CLOSING', { event: eventTag(event) })
    // An inbox that starts asynchronously is waited for until it has started; after
    // that, the check costs nothing.
    if (this.#started !== undefined && !this.#startSettled) {
      return this.#started.then(() => this.#acceptStarted(event, now, delivery, verified.secretIndex, log))
    }
    return this.#acceptStarted(event, now, delivery, verified.secretIndex, log)
  }

  #acceptStarted (event: AnyEvent, now: number, delivery: Delivery, secretIndex: number, log: WebhookLogger): ReceiveResult | Promise<ReceiveResult> {
    if (this.#startError !== undefined) return this.#refuse(log, 'INBOX_UNAVAILABLE', { event: eventTag(event) })
    // close() may have begun while the inbox was starting.
    if (this.#closing !== undefined) return this.#refuse(log, 'CLOSING', { event: eventTag(event) })
    let accepted: AcceptOutcome | Promise<AcceptOutcome>
    try {
      accepted = this.inbox.accept(event, now, delivery.whenAnswered, delivery.waitUntil)
    } catch (error) {
      return this.#inboxFailed(event, error, log)
    }
    // A synchronous inbox (the in-memory one) answers without a promise hop.
    if (typeof accepted === 'string') return this.#answer(accepted, event, secretIndex, log)
    return accepted.then(
      (outcome) => this.#answer(outcome, event, secretIndex, log),
      (error: unknown) => this.#inboxFailed(event, error, log)
    )
  }

  #inboxFailed (event: AnyEvent, error: unknown, log: WebhookLogger): ReceiveResult {
    log.error({ err: error, event: eventTag(event) }, 'the inbox failed to record the event')
    return this.#refuse(log, 'INBOX_UNAVAILABLE', { event: eventTag(event) })
  }

  #answer (outcome: AcceptOutcome, event: AnyEvent, secretIndex: number, log: WebhookLogger): ReceiveResult {
    if (outcome === 'accepted') {
      log.debug({ event: eventTag(event), secretIndex }, 'webhook accepted')
      return ACCEPTED
    }
    if (outcome === 'duplicate') {
      log.info({ event: eventTag(event) }, 'duplicate webhook acknowledged, not dispatched again')
      return DUPLICATE
    }
    return this.#refuse(log, outcomeRefusal[outcome], { event: eventTag(event) })
  }

  /** The answer for a refusal an adapter detects itself (body too large while streaming, say). */
  refusal (code: RefusalCode): ReceiveResult {
    return this.#refusals[code]
  }

  /**
   * Stops accepting (503), waits up to `closeGraceMs` for every accepted event to
   * finish or dead-letter, dead-letters what is left, then aborts handlers' signals.
   * Safe to call more than once.
   */
  close (): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#started !== undefined) await this.#started
      // Handlers are told to stop when the grace period ends, before the inbox
      // reports what is left, so a cooperative handler is not still running while
      // its event is dead-lettered or handed to another process.
      const reason = new Error('sir-webhooks: the receiver closed')
      const abortAtGraceEnd = setTimeout(() => { this.#shutdown.abort(reason) }, this.options.closeGraceMs)
      try {
        await this.inbox.close(this.options.closeGraceMs)
      } finally {
        clearTimeout(abortAtGraceEnd)
        this.#shutdown.abort(reason)
      }
    })()
    return this.#closing
  }

  get #shutdown (): AbortController {
    this.#shutdownController ??= new AbortController()
    return this.#shutdownController
  }

  #refuse (log: WebhookLogger, code: RefusalCode, details: Record<string, unknown>): ReceiveResult {
    const answer = this.#refusals[code]
    if (answer.status >= 500) log.warn({ reason: code, ...details }, 'webhook refused for now')
    else log.info({ reason: code, ...details }, 'webhook rejected')
    return answer
  }

  #assertFunction (handler: unknown, method: string): void {
    if (typeof handler !== 'function') throw new WebhookOptionsError(`${method}(): the handler must be a function, got ${typeof handler}`)
  }

  #register (fn: AnyEventHandler, method: string): RegisteredHandler {
    this.#assertFunction(fn, method)
    return Object.freeze({ name: fn.name === '' ? 'anonymous' : fn.name, fn })
  }

  #runtime (): InboxRuntime {
    const callHandler = (run: HandlerRun): unknown => run.handler.fn(run.event, new RunContext(run, this.#shutdown.signal, this.logger))
    const deadLetter = async (entry: DeadLetter): Promise<void> => {
      this.logger.error({
        event: eventTag(entry.event),
        reason: entry.reason,
        handler: entry.handler,
        attempts: entry.attempts,
        err: entry.error
      }, entry.reason === 'shutdown' ? 'event dead-lettered: shutdown came before it finished' : 'event dead-lettered: a handler failed for good')
      for (const onDeadLetter of this.#deadLetterHandlers) {
        await this.#callSafely('onDeadLetter', entry.event, () => onDeadLetter(entry))
      }
    }
    const shutdown = (): AbortController => this.#shutdown
    return {
      options: this.options,
      logger: this.logger,
      get signal (): AbortSignal { return shutdown().signal },
      handlersFor: (type: string): readonly RegisteredHandler[] => {
        const specific = this.#handlers.get(type)
        if (specific === undefined || specific.length === 0) return this.#anyHandlers
        return this.#anyHandlers.length === 0 ? specific : [...specific, ...this.#anyHandlers]
      },
      runHandler: async (run: HandlerRun): Promise<void> => { await callHandler(run) },
      callHandler,
      handlerFailed: async (run: HandlerRun, error: unknown): Promise<void> => {
        const info = { handler: run.handler.name, attempts: run.attempt }
        for (const onError of this.#errorHandlers) {
          await this.#callSafely('onError', run.event, () => onError(error, run.event, info))
        }
        await deadLetter({
          event: run.event,
          reason: 'handler_failed',
          handler: run.handler.name,
          error,
          attempts: run.attempt,
          receivedAt: new Date(run.receivedAt)
        })
      },
      deadLetter
    }
  }

  async #callSafely (what: string, event: AnyEvent, call: () => unknown): Promise<void> {
    try {
      await call()
    } catch (error) {
      this.logger.error({ err: error, event: eventTag(event) }, `an ${what} callback threw`)
    }
  }
}

/**
 * The handler's context. Its child logger and its Date are made on first use: a
 * pino child costs microseconds, and most handlers on the hot path never log. A class, so
 * the getter lives on the prototype and each context is a plain small object.
 */
class RunContext implements HandlerContext {
  readonly attempt: number
  readonly signal: AbortSignal
  readonly #event: AnyEvent
  readonly #receivedAt: number
  readonly #logger: WebhookLogger
  #receivedAtDate: Date | undefined
  #log: WebhookLogger | undefined

  constructor (run: HandlerRun, signal: AbortSignal, logger: WebhookLogger) {
    this.attempt = run.attempt
    this.signal = signal
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

function eventTag (event: AnyEvent): { id: string, type: string } {
  return { id: event.id, type: event.type }
}

function roundSkew (skewSeconds: number | undefined): number | undefined {
  return skewSeconds === undefined ? undefined : Math.round(skewSeconds)
}
