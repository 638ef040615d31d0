import type { WebhookStats } from '../core/stats.js'
import { History } from './history.js'

/** Buckets of the since-start chart: about as many as a chart's width has room for. */
const HISTORY_BUCKETS = 240

/** What changed in one sample interval: the chart's points. */
export interface Sample {
  /** Unix seconds, as uPlot wants its x values; fractional, since samples may come faster than one a second. */
  t: number
  accepted: number
  duplicate: number
  refused: number
  succeeded: number
  failed: number
  retried: number
}

type Totals = Omit<Sample, 't'>

function totals (stats: WebhookStats): Totals {
  return {
    accepted: stats.deliveries.accepted,
    duplicate: stats.deliveries.duplicate,
    refused: stats.deliveries.refused,
    succeeded: stats.handlers.succeeded,
    failed: stats.handlers.failed,
    retried: stats.handlers.retried
  }
}

/**
 * The overview's last hour: a bounded ring of per-interval deltas of
 * `webhooks.stats()`, taken by an unref'd timer. It reads the receiver's counters
 * and never touches a delivery: the webhook route costs the same with it.
 */
export class Samples {
  readonly #ring: Array<Sample | undefined>
  #next = 0
  #last: Totals | undefined
  #timer: ReturnType<typeof setInterval> | undefined
  /** The same samples since start, downsampled: the second chart. */
  readonly history: History

  constructor (readonly capacity: number, intervalMs = 5_000) {
    this.#ring = new Array<Sample | undefined>(capacity)
    this.history = new History(HISTORY_BUCKETS, intervalMs / 1000)
  }

  start (read: () => WebhookStats, intervalMs: number): void {
    this.take(read(), Date.now())
    this.#timer = setInterval(() => { this.take(read(), Date.now()) }, intervalMs)
    this.#timer.unref()
  }

  stop (): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
  }

  take (stats: WebhookStats, now: number): void {
    const current = totals(stats)
    const last = this.#last ?? current
    this.#last = current
    const sample = { t: now / 1000 } as Sample
    for (const key of Object.keys(current) as Array<keyof Totals>) sample[key] = Math.max(0, current[key] - last[key])
    this.#ring[this.#next] = sample
    this.history.add(sample)
    this.#next = (this.#next + 1) % this.capacity
  }

  /** Oldest first. */
  list (): Sample[] {
    const ordered = [...this.#ring.slice(this.#next), ...this.#ring.slice(0, this.#next)]
    return ordered.filter((sample): sample is Sample => sample !== undefined)
  }
}
