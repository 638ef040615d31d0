import type { DeliveryRecord } from './simulate.js'

export interface SimulationSummary {
  /** Deliveries started, duplicates included. */
  deliveries: number
  /** Distinct event ids. */
  events: number
  duplicates: number
  outOfOrder: number
  delivered: number
  /** Deliveries that needed more than one attempt, whatever their outcome. */
  retried: number
  givenUp: number
  cancelled: number
  attempts: number
  /** Attempts per answer: an HTTP status, or the failure (`timeout`, `ECONNREFUSED`). */
  answers: Record<string, number>
  /** Over attempts that got an answer, in milliseconds; null when none did. */
  latencyMs: { p50: number | null, p99: number | null, max: number | null }
  durationMs: number
}

/** Nearest-rank percentile: always a value that was measured. */
export function percentile (values: readonly number[], p: number): number | null {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length))
  return sorted[rank - 1] ?? null
}

export function summarize (deliveries: readonly DeliveryRecord[], durationMs: number): SimulationSummary {
  const answers: Record<string, number> = {}
  const latencies: number[] = []
  let attempts = 0
  for (const delivery of deliveries) {
    for (const attempt of delivery.attempts) {
      attempts++
      const key = attempt.status === null ? attempt.error ?? 'no answer' : String(attempt.status)
      answers[key] = (answers[key] ?? 0) + 1
      if (attempt.status !== null) latencies.push(attempt.latencyMs)
    }
  }
  const count = (test: (delivery: DeliveryRecord) => boolean): number => deliveries.filter(test).length
  return {
    deliveries: deliveries.length,
    events: new Set(deliveries.map((delivery) => delivery.eventId)).size,
    duplicates: count((delivery) => delivery.duplicate),
    outOfOrder: count((delivery) => delivery.outOfOrder),
    delivered: count((delivery) => delivery.outcome === 'delivered'),
    retried: count((delivery) => delivery.attempts.length > 1),
    givenUp: count((delivery) => delivery.outcome === 'given_up'),
    cancelled: count((delivery) => delivery.outcome === 'cancelled'),
    attempts,
    answers,
    latencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: percentile(latencies, 100) },
    durationMs
  }
}

function milliseconds (value: number | null): string {
  return value === null ? '-' : `${value.toFixed(1)} ms`
}

/** The summary as an aligned two-column table, for terminals and logs. */
export function formatSummary (summary: SimulationSummary): string {
  const answers = Object.entries(summary.answers)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([answer, count]) => `${answer}×${count}`)
    .join('  ')
  const rows: Array<[string, string]> = [
    ['deliveries', `${summary.deliveries} (${summary.events} events, ${summary.duplicates} duplicates, ${summary.outOfOrder} out of order)`],
    ['delivered', String(summary.delivered)],
    ['retried', String(summary.retried)],
    ['given up', String(summary.givenUp)],
    ...(summary.cancelled > 0 ? [['cancelled', String(summary.cancelled)] as [string, string]] : []),
    ['attempts', String(summary.attempts)],
    ['answers', answers === '' ? '-' : answers],
    ['latency p50', milliseconds(summary.latencyMs.p50)],
    ['latency p99', milliseconds(summary.latencyMs.p99)],
    ['duration', `${(summary.durationMs / 1000).toFixed(1)} s`]
  ]
  const width = Math.max(...rows.map(([label]) => label.length))
  return rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join('\n')
}
