import { refusalStatus, WebhookOptionsError } from './errors.js'
import { eventNames, type AnyEvent } from './events.js'
import type { HandlerRun } from './inbox.js'
import type { ReceiveCode } from './delivery.js'
import type { QueueCounts } from './stats.js'
import { isThenable } from './thenable.js'
import type {
  CounterLike,
  HistogramLike,
  MeterLike,
  MeterProviderLike,
  OpenTelemetryApi,
  SpanContextLike,
  SpanLike,
  TelemetryAttributes,
  TelemetryOptions,
  TracerLike,
  TracerProviderLike
} from './telemetry-types.js'

const SCOPE = 'sir-webhooks'
// The API's enum values, fixed by the OpenTelemetry specification.
const SPAN_KIND_CONSUMER = 4
const STATUS_ERROR = 2

const knownTypes = new Set<string>(eventNames)

/** Event types are a fixed set; anything else is one `other`, so attribute cardinality stays bounded. */
export function typeAttribute (type: string): string {
  return knownTypes.has(type) ? type : 'other'
}

// Seconds. A handler is usually milliseconds to seconds; lag runs from the
// sender's retries (minutes to hours) down to a queue wait.
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]
const LAG_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 21_600, 86_400]

// The longest string the receiver puts in a span attribute or status. Ids are
// bounded at the door (256 bytes, envelope.ts), but an event recorded before that
// bound, a handler's name or an error's message is not: an exporter would ship
// every byte of it with every span.
const MAX_ATTRIBUTE_LENGTH = 256
const MAX_MESSAGE_LENGTH = 1024
const MAX_STACK_LENGTH = 4096

/** `text`, cut to `max` UTF-16 units (the common case, already short, allocates nothing). */
export function capped (text: string, max = MAX_ATTRIBUTE_LENGTH): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`
}

/** What a span records of a handler's error: its name, message and stack, each capped. */
function exceptionOf (error: unknown): { name?: string, message: string, stack?: string } {
  if (!(error instanceof Error)) return { message: capped(String(error), MAX_MESSAGE_LENGTH) }
  return {
    name: capped(error.name),
    message: capped(error.message, MAX_MESSAGE_LENGTH),
    ...(typeof error.stack === 'string' ? { stack: capped(error.stack, MAX_STACK_LENGTH) } : {})
  }
}

/** One frozen attribute set per delivery answer, made once: recording one allocates nothing. */
function deliveryAttributes (): Record<ReceiveCode, TelemetryAttributes> {
  const attributes: Partial<Record<ReceiveCode, TelemetryAttributes>> = {
    ACCEPTED: Object.freeze({ 'sir_webhooks.outcome': 'accepted' }),
    DUPLICATE: Object.freeze({ 'sir_webhooks.outcome': 'duplicate' })
  }
  for (const code of Object.keys(refusalStatus) as Array<keyof typeof refusalStatus>) {
    attributes[code] = Object.freeze({ 'sir_webhooks.outcome': 'refused', 'sir_webhooks.reason': code })
  }
  return attributes as Record<ReceiveCode, TelemetryAttributes>
}

// A duplicate whose body differs from the one first recorded under its id: still a
// duplicate answered 200, marked so that a sender reusing ids shows on a dashboard.
const DUPLICATE_DIFFERS: TelemetryAttributes = Object.freeze({ 'sir_webhooks.outcome': 'duplicate', 'sir_webhooks.body_differs': true })

/**
 * The delivery span of each accepted event, for the handler spans to link to. By
 * event object for the memory inbox (gone with the event), and by id for durable
 * inboxes, whose handlers get the event parsed afresh: a run in this process
 * links even when it is a retry hours later, a run in another process or after a
 * restart does not. The id map is bounded; the oldest go first.
 */
class DeliverySpans {
  readonly #byEvent = new WeakMap<object, SpanContextLike>()
  readonly #byId = new Map<string, SpanContextLike>()
  readonly #maxIds: number

  constructor (maxIds: number) {
    this.#maxIds = maxIds
  }

  remember (event: AnyEvent, context: SpanContextLike): void {
    this.#byEvent.set(event, context)
    this.#byId.delete(event.id)
    this.#byId.set(event.id, context)
    if (this.#byId.size > this.#maxIds) this.#byId.delete(this.#byId.keys().next().value as string)
  }

  find (event: AnyEvent): SpanContextLike | undefined {
    return this.#byEvent.get(event) ?? this.#byId.get(event.id)
  }
}

function meterFor (provider: MeterProviderLike | undefined, api: OpenTelemetryApi | undefined): MeterProviderLike | undefined {
  if (provider !== undefined || api === undefined) return provider
  const global = api.metrics.getMeterProvider()
  // Without an SDK the global provider hands out the API's no-op meter.
  return global.getMeter(SCOPE) === api.createNoopMeter() ? undefined : global
}

function tracerFor (provider: TracerProviderLike | undefined, api: OpenTelemetryApi | undefined): TracerProviderLike | undefined {
  if (provider !== undefined || api === undefined) return provider
  const global = api.trace.getTracerProvider() as TracerProviderLike & { getDelegate?: () => unknown }
  // The global tracer provider is a proxy that stays a no-op until an SDK registers.
  const noop = new api.ProxyTracerProvider().getDelegate()
  return typeof global.getDelegate === 'function' && global.getDelegate() === noop ? undefined : global
}

function assertProvider (name: string, value: unknown, method: string): void {
  if (value !== undefined && (value === null || typeof (value as Record<string, unknown>)[method] !== 'function')) {
    throw new WebhookOptionsError(`"telemetry.${name}" must be an OpenTelemetry ${name === 'meterProvider' ? 'MeterProvider' : 'TracerProvider'} (an object with ${method}())`)
  }
}

/**
 * The receiver's OpenTelemetry metrics and spans. Made only when a provider is
 * given or an SDK has registered a global one; otherwise the receiver holds no
 * Telemetry at all and its hot path checks one field.
 */
export class Telemetry {
  readonly #api: OpenTelemetryApi | undefined
  readonly #clock: () => number
  readonly #deliveries: CounterLike | undefined
  readonly #deadLetters: CounterLike | undefined
  readonly #deferred: CounterLike | undefined
  readonly #handlerDuration: HistogramLike | undefined
  readonly #eventLag: HistogramLike | undefined
  readonly #tracer: TracerLike | undefined
  /** For instruments registered by other parts (ordering/telemetry.ts); undefined without metrics. */
  readonly meter: MeterLike | undefined
  readonly #deliveryAttributes = deliveryAttributes()
  readonly #deliverySpans: DeliverySpans

  /** The telemetry the options ask for, or undefined when there is nowhere to send it. */
  static create (options: TelemetryOptions | false | undefined, api: OpenTelemetryApi | undefined, clock: () => number, queue: () => QueueCounts, maxQueueSize: number): Telemetry | undefined {
    if (options === false) return undefined
    if (options !== undefined && (options === null || typeof options !== 'object')) {
      throw new WebhookOptionsError('"telemetry" must be an object { meterProvider?, tracerProvider? } or false')
    }
    assertProvider('meterProvider', options?.meterProvider, 'getMeter')
    assertProvider('tracerProvider', options?.tracerProvider, 'getTracer')
    const meterProvider = meterFor(options?.meterProvider, api)
    const tracerProvider = tracerFor(options?.tracerProvider, api)
    if (meterProvider === undefined && tracerProvider === undefined) return undefined
    return new Telemetry(meterProvider, tracerProvider, api, clock, queue, maxQueueSize)
  }

  private constructor (meterProvider: MeterProviderLike | undefined, tracerProvider: TracerProviderLike | undefined, api: OpenTelemetryApi | undefined, clock: () => number, queue: () => QueueCounts, maxQueueSize: number) {
    this.#api = api
    this.#clock = clock
    this.#deliverySpans = new DeliverySpans(Math.max(maxQueueSize, 10_000))
    this.#tracer = tracerProvider?.getTracer(SCOPE)
    const meter = this.meter = meterProvider?.getMeter(SCOPE)
    if (meter === undefined) return
    this.#deliveries = meter.createCounter('sir_webhooks.deliveries', { description: 'Deliveries answered, by outcome and refusal reason', unit: '{delivery}' })
    this.#deadLetters = meter.createCounter('sir_webhooks.dead_letters', { description: 'Events dead-lettered, by reason', unit: '{event}' })
    this.#deferred = meter.createCounter('sir_webhooks.handler.deferred', { description: 'Handler runs put off without using an attempt, by handler and reason', unit: '{run}' })
    this.#handlerDuration = meter.createHistogram('sir_webhooks.handler.duration', {
      description: 'How long one handler run took',
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS }
    })
    this.#eventLag = meter.createHistogram('sir_webhooks.event.lag', {
      description: "From the event's createdAt to its handler's first start: the sender's retries and the queue added up",
      unit: 's',
      advice: { explicitBucketBoundaries: LAG_BUCKETS }
    })
    meter.createObservableGauge('sir_webhooks.queue.size', { description: 'Events accepted and not finished', unit: '{event}' })
      .addCallback((result) => {
        const { size, running } = queue()
        result.observe(Math.max(0, size - running), { 'sir_webhooks.state': 'waiting' })
        result.observe(running, { 'sir_webhooks.state': 'running' })
      })
    meter.createObservableGauge('sir_webhooks.queue.oldest_age', { description: 'Age of the oldest event accepted and not finished, where the inbox can tell', unit: 's' })
      .addCallback((result) => {
        const { oldestReceivedAt } = queue()
        if (oldestReceivedAt !== undefined) result.observe(Math.max(0, this.#clock() - oldestReceivedAt) / 1000)
      })
  }

  /**
   * A delivery was answered. `startedAt` is when the receiver began deciding it,
   * where known; `bodyDiffers`, for a duplicate whose body is not the one first
   * recorded under its id.
   */
  delivered (code: ReceiveCode, event: AnyEvent | undefined, startedAt: number | undefined, bodyDiffers = false): void {
    const attributes = bodyDiffers ? DUPLICATE_DIFFERS : this.#deliveryAttributes[code]
    this.#deliveries?.add(1, attributes)
    if (this.#tracer === undefined) return
    const spanAttributes: TelemetryAttributes = { ...attributes }
    if (event !== undefined) {
      spanAttributes['sir_webhooks.event_type'] = typeAttribute(event.type)
      spanAttributes['sir_webhooks.event_id'] = capped(event.id)
    }
    const span = this.#tracer.startSpan('sir_webhooks receive', startedAt === undefined ? { attributes: spanAttributes } : { attributes: spanAttributes, startTime: startedAt })
    if (code !== 'ACCEPTED' && code !== 'DUPLICATE' && refusalStatus[code] >= 500) span.setStatus({ code: STATUS_ERROR, message: code })
    if (code === 'ACCEPTED' && event !== undefined) this.#deliverySpans.remember(event, span.spanContext())
    span.end()
  }

  /** A handler's run was put off (flow control): no attempt used. */
  deferred (handler: string, reason: string): void {
    this.#deferred?.add(1, { 'sir_webhooks.handler': capped(handler), 'sir_webhooks.reason': reason })
  }

  deadLettered (reason: string): void {
    this.#deadLetters?.add(1, { 'sir_webhooks.reason': reason })
  }

  /**
   * Runs one handler inside its span, recording its duration and, on its first
   * attempt, the event's lag. Returns what `call` returns; the handler's promise,
   * if any, is followed to record the end, and its rejection passed on.
   */
  runHandler (run: HandlerRun, call: () => unknown): unknown {
    const type = typeAttribute(run.event.type)
    if (run.attempt === 1) this.#recordLag(run.event, type)
    const span = this.#startHandlerSpan(run, type)
    const started = performance.now()
    const end = (error: unknown, failed: boolean): void => {
      this.#handlerDuration?.record((performance.now() - started) / 1000, {
        'sir_webhooks.handler': capped(run.handler.name),
        'sir_webhooks.event_type': type,
        'sir_webhooks.result': failed ? 'failure' : 'success'
      })
      if (span === undefined) return
      span.setAttribute('sir_webhooks.result', failed ? 'failure' : 'success')
      if (failed) {
        const exception = exceptionOf(error)
        span.recordException(exception)
        span.setStatus({ code: STATUS_ERROR, message: exception.message })
      }
      span.end()
    }
    let returned: unknown
    try {
      returned = span === undefined || this.#api === undefined ? call() : this.#api.context.with(this.#api.trace.setSpan(this.#api.ROOT_CONTEXT, span), call)
    } catch (error) {
      end(error, true)
      throw error
    }
    if (!isThenable(returned)) {
      end(undefined, false)
      return returned
    }
    return Promise.resolve(returned).then((value) => {
      end(undefined, false)
      return value
    }, (error: unknown) => {
      end(error, true)
      throw error
    })
  }

  #startHandlerSpan (run: HandlerRun, type: string): SpanLike | undefined {
    if (this.#tracer === undefined) return undefined
    const link = this.#deliverySpans.find(run.event)
    // A root span: the handler runs long after the request whose context happened
    // to be active when the queue was woken; the link ties it to its delivery.
    return this.#tracer.startSpan('sir_webhooks handle', {
      kind: SPAN_KIND_CONSUMER,
      root: true,
      attributes: {
        'sir_webhooks.handler': capped(run.handler.name),
        'sir_webhooks.event_type': type,
        'sir_webhooks.event_id': capped(run.event.id),
        'sir_webhooks.attempt': run.attempt
      },
      ...(link === undefined ? {} : { links: [{ context: link }] })
    })
  }

  #recordLag (event: AnyEvent, type: string): void {
    if (this.#eventLag === undefined || typeof event.createdAt !== 'string') return
    const createdAt = Date.parse(event.createdAt)
    // A sender clock ahead of ours would give a negative lag; histograms take none.
    if (!Number.isNaN(createdAt)) this.#eventLag.record(Math.max(0, this.#clock() - createdAt) / 1000, { 'sir_webhooks.event_type': type })
  }
}
