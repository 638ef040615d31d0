import { assertLogger, type WebhookLogger } from './logger.js'
import { WebhookOptionsError, type RefusalCode } from './errors.js'
import type { Delivery, ReceiveResult } from './delivery.js'
import type { EventName } from './events.js'
import type { AnyEventHandler, DeadLetterHandler, ErrorHandler, EventHandler } from './handlers.js'
import type { Inbox, InboxContext } from './inbox.js'
import { InboxLifecycle } from './lifecycle.js'
import { MemoryInbox } from './memory-inbox.js'
import { resolveOptions, type ResolvedOptions, type WebhooksOptions } from './options.js'
import { DeliveryPipeline, type Verifier } from './pipeline.js'
import { HandlerRegistry, type HandlerOptions, type Registration } from './registry.js'
import { HandlerRuntime } from './runtime.js'
import { judgeHealth, type WebhookHealth } from './health.js'
import { errorSafeLogger } from './safe-error.js'
import { ReceiverStats, type QueueCounts, type WebhookStats } from './stats.js'
import { Telemetry } from './telemetry.js'
import type { OpenTelemetryApi } from './telemetry-types.js'
import { FlowGate } from './flow/gate.js'
import { flowSnapshot } from './flow/snapshot.js'
import type { OrderingEngine } from './ordering/engine.js'
import { assertOrderingStore, createOrdering, orderingControl, type OrderingControl } from './ordering/setup.js'
import { checkReplayFilter, type ReplayFilter } from './replay-filter.js'
import { checkReplayOptions, type ReplayOptions, type ReplayRun } from './replay.js'

/**
 * What differs between runtimes: how signatures are checked (node:crypto,
 * synchronous; or Web Crypto, asynchronous) and which logger is the default.
 * Everything else about a receiver is the same code everywhere.
 */
export interface ReceiverPlatform {
  createVerifier (secrets: readonly string[]): Verifier
  defaultLogger (): WebhookLogger
  /** `@opentelemetry/api`, where the runtime can load it synchronously and it is installed. */
  openTelemetryApi? (): OpenTelemetryApi | undefined
}

/**
 * The receiver: verifies deliveries, hands accepted events to an inbox and runs
 * the handlers registered with `on`. It knows no HTTP framework; adapters read a
 * request into a `Delivery` and write back the `ReceiveResult`. Users construct
 * `Webhooks`, this class bound to their runtime's platform. It only composes:
 * the registry (who handles what), the runtime (running one handler), the
 * lifecycle (start and close) and the pipeline (one delivery's decision).
 */
export class WebhookReceiver<I extends Inbox = Inbox> {
  readonly options: ResolvedOptions
  readonly logger: WebhookLogger
  /** The inbox, typed as given: `webhooks.inbox.deadLetters()` type-checks for a durable one. */
  readonly inbox: I

  readonly #registry: HandlerRegistry
  readonly #lifecycle: InboxLifecycle
  readonly #pipeline: DeliveryPipeline
  readonly #stats = new ReceiverStats()
  readonly #flow: FlowGate | undefined
  readonly #ordering: OrderingEngine | undefined
  /** The keys ordering blocked behind a dead letter, and a way to move one on (docs/ordering.md). */
  readonly ordering: OrderingControl
  #closed: Promise<void> | undefined

  constructor (options: WebhooksOptions<I>, platform: ReceiverPlatform) {
    this.options = resolveOptions(options)
    assertLogger(options.logger)
    this.logger = options.logger ?? platform.defaultLogger()
    // Without an inbox option, I is the Inbox interface itself, which MemoryInbox is.
    this.inbox = options.inbox ?? new MemoryInbox() as Inbox as I
    assertOrderingStore(this.options, this.inbox, inboxName(this.inbox))
    const flowStore = typeof this.inbox.flowStore === 'function' ? this.inbox.flowStore() : undefined
    this.#registry = new HandlerRegistry(this.inbox.durable === true, flowStore === undefined ? inboxName(this.inbox) : undefined)
    const telemetry = Telemetry.create(options.telemetry, platform.openTelemetryApi?.(), this.options.clock, () => this.#queueCounts(), this.options.maxQueueSize)
    // What the inbox and the handlers log goes through one place that drops the
    // error fields able to echo a body (a store's `where`, a driver's `parameters`).
    const safeLogger = errorSafeLogger(this.logger)
    this.#flow = flowStore === undefined ? undefined : new FlowGate(flowStore, this.options.retryLater, safeLogger, telemetry === undefined ? undefined : (handler, reason) => { telemetry.deferred(handler, reason) })
    this.#ordering = createOrdering(this.options, this.inbox, inboxName(this.inbox), safeLogger, telemetry)
    this.ordering = orderingControl(this.#ordering)
    const runtime = new HandlerRuntime(this.options, safeLogger, this.#registry, this.#stats, telemetry, this.#flow, this.#ordering)
    this.#lifecycle = new InboxLifecycle(this.inbox, runtime, safeLogger, this.options.closeGraceMs)
    this.#pipeline = new DeliveryPipeline(this.options, platform.createVerifier(this.options.secrets), this.inbox, this.#lifecycle, this.#stats, telemetry, this.logger)
  }

  /**
   * Registers a handler for one event type or several. Misspelt types do not
   * compile. `{ name }` names it for logs, dead letters and durable inboxes.
   */
  on<K extends EventName>(type: K | readonly K[], handler: EventHandler<K, InboxContext<I>>, options?: HandlerOptions): this {
    const types: readonly string[] = typeof type === 'string' ? [type] : [...new Set(type)]
    if (types.length === 0 || types.some((name) => typeof name !== 'string' || name.length === 0)) {
      throw new WebhookOptionsError('on(type, handler): "type" must be an event type or a non-empty array of them')
    }
    this.#registry.add(types, handler as AnyEventHandler, options, 'on')
    return this
  }

  /** Registers a handler for every event, including types this version does not know. */
  onAny (handler: AnyEventHandler<InboxContext<I>>, options?: HandlerOptions): this {
    this.#registry.add([], handler as AnyEventHandler, options, 'onAny')
    return this
  }

  /** Called when a handler has failed for good (after its last attempt). */
  onError (handler: ErrorHandler): this {
    this.#registry.addErrorHandler(handler)
    return this
  }

  /** Called for each handler that failed for good, and for events cut off by shutdown. */
  onDeadLetter (handler: DeadLetterHandler): this {
    this.#registry.addDeadLetterHandler(handler)
    return this
  }

  /**
   * Removes a handler. `off(type, handler)` removes it from those types only;
   * `off(handler)` removes it from everything it was registered with.
   */
  off<K extends EventName>(type: K | readonly K[], handler: EventHandler<K, InboxContext<I>>): this
  // Any handler, whatever event type it was written for: removal is by identity.
  off (handler: Registration | ((event: never, context: never) => unknown)): this
  off (typeOrHandler: unknown, maybeHandler?: unknown): this {
    if (typeof typeOrHandler === 'function') this.#registry.remove(typeOrHandler)
    else this.#registry.remove(maybeHandler, typeof typeOrHandler === 'string' ? [typeOrHandler] : typeOrHandler as readonly string[])
    return this
  }

  /** Counts since this receiver was made, in this process. Synchronous and cheap. */
  stats (): WebhookStats {
    const stats: WebhookStats = { ...this.#stats.snapshot(this.#queueCounts(), this.#registry.handlers), flow: flowSnapshot(this.#flow, this.inbox.oldestReceivedAt, this.options.clock()) }
    if (this.#ordering !== undefined) stats.ordering = this.#ordering.stats()
    return stats
  }

  /**
   * Stops running one handler (by name), or every handler: deliveries are still
   * verified, stored and answered 2xx; the runs wait. On a shared store (BullMQ)
   * it pauses every receiver on it. Refused on an inbox without flow control.
   */
  pause (handlerName?: string): Promise<void> {
    return this.#flowGate('pause', handlerName).pause(handlerName)
  }

  /** Undoes `pause()`: without a name, every handler, those paused by name too. The waiting runs drain at their pace. */
  resume (handlerName?: string): Promise<void> {
    return this.#flowGate('resume', handlerName).resume(handlerName)
  }

  #flowGate (method: string, handlerName: string | undefined): FlowGate {
    if (this.#flow === undefined) {
      throw new WebhookOptionsError(`${method}(): ${inboxName(this.inbox)} has no flow control, so nothing can be paused; every built-in inbox has it (memory, SQLite, Postgres, BullMQ)`)
    }
    if (handlerName !== undefined && (typeof handlerName !== 'string' || handlerName === '')) {
      throw new WebhookOptionsError(`${method}(handlerName): the name must be a non-empty string, got ${JSON.stringify(handlerName) ?? typeof handlerName}`)
    }
    // An accept-only receiver (handlers in other processes) may pause any name on a shared store.
    if (handlerName !== undefined && this.#registry.hasHandlers && !this.#registry.hasName(handlerName)) {
      throw new WebhookOptionsError(`${method}(handlerName): no handler of this receiver is named ${JSON.stringify(handlerName)}`)
    }
    return this.#flow
  }

  /**
   * Replays the stored events that match `filter` (a durable inbox's done or
   * dead events): queues them again, as `sir-webhooks inbox redrive --state …`
   * does, and answers how many. With `dryRun: true`, runs the current handlers
   * on at most `limit` of them instead and answers each run's outcome, the events
   * left as they were: on Postgres each run is rolled back, elsewhere handlers
   * see `context.replay.dryRun` and must skip their outside effects themselves.
   */
  replay (filter: ReplayFilter, options: ReplayOptions & { dryRun: true }): Promise<ReplayRun[]>
  replay (filter: ReplayFilter, options?: ReplayOptions & { dryRun?: false }): Promise<number>
  replay (filter: ReplayFilter, options?: ReplayOptions): Promise<number | ReplayRun[]>
  async replay (filter: ReplayFilter, options?: ReplayOptions): Promise<number | ReplayRun[]> {
    const { dryRun, limit } = checkReplayOptions(options)
    checkReplayFilter(filter, 'replay(filter)')
    const inbox = this.inbox
    if (typeof (dryRun ? inbox.replayDryRun : inbox.requeue) !== 'function') {
      throw new WebhookOptionsError(`replay(): ${inboxName(inbox)} keeps no finished events to replay${dryRun ? ' dry' : ''}; the SQLite, Postgres and BullMQ inboxes do`)
    }
    if (this.#lifecycle.starting !== undefined) await this.#lifecycle.starting
    return dryRun ? await inbox.replayDryRun!(filter, limit) : await inbox.requeue!(filter)
  }

  /** `ok`, `degraded`, `paused` or `closing`, with the reasons: for readiness probes and load shedding. */
  health (): WebhookHealth {
    const lifecycle = this.#lifecycle
    return judgeHealth({
      closing: lifecycle.closing,
      start: lifecycle.starting !== undefined ? 'starting' : lifecycle.startFailed ? 'failed' : 'done',
      inbox: this.inbox,
      degradedQueueSize: this.options.degradedQueueSize,
      paused: this.#flow?.pauseState(),
      blockedKeys: this.#ordering?.store.counts().blocked
    })
  }

  #queueCounts (): QueueCounts {
    return { size: this.inbox.size ?? 0, running: this.inbox.running ?? 0, oldestReceivedAt: this.inbox.oldestReceivedAt }
  }

  /**
   * Resolves when nothing accepted is waiting or running: every handler done,
   * dead-lettered or cut off by close(). For serverless platforms and tests.
   * Needs an inbox that can tell (the in-memory one can).
   */
  idle (): Promise<void> {
    return this.#lifecycle.idle()
  }

  /**
   * Resolves once the inbox's code is loaded (bullmq imported, for the BullMQ
   * inbox); it does not wait for the store to answer, and never rejects. Await
   * it before the server listens, so that the first deliveries are not held
   * while modules load: the Fastify plugin does so itself.
   */
  async loaded (): Promise<void> {
    // An inbox of one's own whose loaded() rejects: its start() reports the failure.
    await this.inbox.loaded?.()?.catch(() => {})
  }

  /** True once `close()` has been called: new deliveries get 503. */
  get closing (): boolean {
    return this.#lifecycle.closing
  }

  /**
   * Decides a delivery: verify, then parse, then hand to the inbox. Never rejects;
   * every outcome is an answer with a status from the contract. `log` is the
   * request's logger where the framework has one.
   */
  async receive (delivery: Delivery, log: WebhookLogger = this.logger): Promise<ReceiveResult> {
    return await this.#pipeline.decide(delivery, log)
  }

  /**
   * `receive`, for adapters: the answer itself when every step is synchronous, a
   * promise only when a step is not. Never throws or rejects.
   */
  decide (delivery: Delivery, log: WebhookLogger = this.logger): ReceiveResult | Promise<ReceiveResult> {
    return this.#pipeline.decide(delivery, log)
  }

  /**
   * A refusal an adapter detects itself (body too large while streaming, body
   * already consumed): answered and logged as the receiver's own refusals are.
   */
  refuse (code: RefusalCode, log: WebhookLogger = this.logger, details: Record<string, unknown> = {}, message?: string): ReceiveResult {
    return this.#pipeline.refuse(code, log, details, message)
  }

  /** The answer for a refusal, without a log line. */
  refusal (code: RefusalCode): ReceiveResult {
    return this.#pipeline.refusal(code)
  }

  /**
   * Stops accepting (503), waits up to `closeGraceMs` for every accepted event to
   * finish or dead-letter, dead-letters what is left, then aborts handlers' signals.
   * Safe to call more than once.
   */
  close (): Promise<void> {
    // Refusals counted and not yet logged are written once the inbox has closed.
    this.#closed ??= this.#lifecycle.close().finally(() => { this.#pipeline.flushRefusalLog() })
    return this.#closed
  }
}

/** How an inbox is named in messages: its class, as users import it. */
function inboxName (inbox: Inbox): string {
  const name = (inbox as { constructor?: { name?: unknown } }).constructor?.name
  return typeof name === 'string' && name !== '' && name !== 'Object' ? `the inbox ${name}` : 'this inbox'
}
