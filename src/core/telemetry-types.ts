/**
 * The part of OpenTelemetry's API the receiver uses, written out structurally so
 * that the package's types never name `@opentelemetry/api`: it is an optional
 * peer, and a user without it must still compile. A `MeterProvider` and a
 * `TracerProvider` from any OpenTelemetry SDK fit these shapes.
 */

export type TelemetryAttributes = Record<string, string | number | boolean>

export interface CounterLike {
  add (value: number, attributes?: TelemetryAttributes): void
}

export interface HistogramLike {
  record (value: number, attributes?: TelemetryAttributes): void
}

export interface ObservableResultLike {
  observe (value: number, attributes?: TelemetryAttributes): void
}

export interface ObservableGaugeLike {
  addCallback (callback: (result: ObservableResultLike) => void): void
}

export interface InstrumentOptionsLike {
  description?: string
  unit?: string
  advice?: { explicitBucketBoundaries?: number[] }
}

export interface MeterLike {
  createCounter (name: string, options?: InstrumentOptionsLike): CounterLike
  createHistogram (name: string, options?: InstrumentOptionsLike): HistogramLike
  createObservableGauge (name: string, options?: InstrumentOptionsLike): ObservableGaugeLike
}

export interface MeterProviderLike {
  getMeter (name: string, version?: string): MeterLike
}

export interface SpanContextLike {
  traceId: string
  spanId: string
  traceFlags: number
}

export interface SpanOptionsLike {
  kind?: number
  attributes?: TelemetryAttributes
  links?: Array<{ context: SpanContextLike }>
  startTime?: number
  root?: boolean
}

export interface SpanLike {
  spanContext (): SpanContextLike
  setAttribute (key: string, value: string | number | boolean): unknown
  setStatus (status: { code: number, message?: string }): unknown
  recordException (exception: unknown): void
  end (): void
}

export interface TracerLike {
  startSpan (name: string, options?: SpanOptionsLike): SpanLike
}

export interface TracerProviderLike {
  getTracer (name: string, version?: string): TracerLike
}

/** `telemetry` in the receiver's options. */
export interface TelemetryOptions {
  /** Where the receiver's metrics go. Default: the global one, when an SDK registered it. */
  meterProvider?: MeterProviderLike
  /** Where the receiver's spans go. Default: the global one, when an SDK registered it. */
  tracerProvider?: TracerProviderLike
}

/** What the receiver needs of `@opentelemetry/api` itself: the global providers and the active context. */
export interface OpenTelemetryApi {
  metrics: { getMeterProvider (): MeterProviderLike }
  trace: {
    getTracerProvider (): TracerProviderLike
    setSpan (context: unknown, span: SpanLike): unknown
  }
  context: { with<T>(context: unknown, run: () => T): T }
  ROOT_CONTEXT: unknown
  ProxyTracerProvider: new () => { getDelegate (): unknown }
  createNoopMeter (): unknown
}
