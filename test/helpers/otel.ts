import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader, type DataPoint, type Histogram } from '@opentelemetry/sdk-metrics'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base'

export interface Point {
  attributes: Record<string, unknown>
  value: number | Histogram
}

/**
 * An OpenTelemetry SDK that keeps everything in memory: metrics read on demand,
 * spans as they end. The exporters are the SDK's own, so what a test reads is
 * what a real exporter would have been handed.
 */
export interface OtelForTests {
  meterProvider: MeterProvider
  tracerProvider: BasicTracerProvider
  /** Collects now; every data point of the named metric. */
  points (name: string): Promise<Point[]>
  /** Collects now; every metric as the exporter received it. */
  allMetrics (): Promise<unknown[]>
  spans (): ReadableSpan[]
  shutdown (): Promise<void>
}

export function otelForTests (): OtelForTests {
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  // Exports only when asked (forceFlush): a test reads a collection it caused.
  const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 })
  const meterProvider = new MeterProvider({ readers: [reader] })
  const spanExporter = new InMemorySpanExporter()
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spanExporter)] })
  const collect = async (): Promise<unknown[]> => {
    metricExporter.reset()
    await reader.forceFlush()
    return metricExporter.getMetrics().flatMap((resource) => resource.scopeMetrics.flatMap((scope) => scope.metrics))
  }
  return {
    meterProvider,
    tracerProvider,
    async points (name) {
      const metrics = await collect() as Array<{ descriptor: { name: string }, dataPoints: Array<DataPoint<number | Histogram>> }>
      return metrics.filter((metric) => metric.descriptor.name === name)
        .flatMap((metric) => metric.dataPoints.map((point) => ({ attributes: { ...point.attributes }, value: point.value })))
    },
    allMetrics: collect,
    spans: () => spanExporter.getFinishedSpans(),
    async shutdown () {
      await meterProvider.shutdown()
      await tracerProvider.shutdown()
    }
  }
}

/** The value of the point whose attributes include `match`, 0 when there is none. */
export function sumWhere (points: readonly Point[], match: Record<string, unknown>): number {
  return points
    .filter((point) => Object.entries(match).every(([key, value]) => point.attributes[key] === value))
    .reduce((sum, point) => sum + (typeof point.value === 'number' ? point.value : point.value.count), 0)
}
