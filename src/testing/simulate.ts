import { randomBytes } from 'node:crypto'
import { eventNames, type EventName, type KnownEvent } from '../core/events.js'
import { planEvents } from './plan-events.js'
import { seededRandom } from './random.js'
import { deliverWithRetries, type AttemptRecord, type DeliveryOutcome, type SenderOptions } from './sender.js'
import { summarize, type SimulationSummary } from './summary.js'

export interface SimulateOptions extends Omit<SenderOptions, 'onAttempt'> {
  /** Distinct events to send. Default 20. */
  events?: number
  /** New deliveries started per second. Default 10. */
  rate?: number
  /** Share of events (0 to 1) delivered a second time later, as the platform does after a slow answer. Default 0.1. */
  duplicates?: number
  /** Share of events (0 to 1) sent after events created later than them. Default 0.1. */
  outOfOrder?: number
  /**
   * Types to draw from. Default: all 14 documented types. With `action.reversed`
   * among them, half the actions completed are reversed a little later (same
   * `data.actionId`, later `createdAt`): see plan-events.ts.
   */
  types?: readonly EventName[]
  /** Makes the plan (types, reversals, tokens, order, duplicates) repeatable. Event ids and action ids stay fresh. */
  seed?: number
  /** Called whenever a delivery makes progress, for a progress bar. */
  onProgress?: (progress: SimulationProgress) => void
}

export interface SimulationProgress {
  planned: number
  started: number
  finished: number
  delivered: number
  givenUp: number
  attempts: number
}

export interface DeliveryRecord {
  /** The sender's own id for this delivery; a duplicate has its own. */
  deliveryId: string
  eventId: string
  type: string
  /** The event's `createdAt` and `data` as sent: what a receiver's state should end up as can be worked out from them. */
  createdAt: string
  data: Record<string, unknown>
  /** A second delivery of an event already sent. */
  duplicate: boolean
  /** Started after an event that was created later. */
  outOfOrder: boolean
  outcome: DeliveryOutcome
  attempts: AttemptRecord[]
}

export interface SimulationResult {
  startedAt: string
  durationMs: number
  deliveries: DeliveryRecord[]
  summary: SimulationSummary
}

interface PlannedDelivery {
  event: KnownEvent
  index: number
  duplicate: boolean
}

function share (name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) {
    throw new TypeError(`sir-webhooks: "${name}" must be a number from 0 to 1, got ${String(value)}`)
  }
  return value
}

function positive (name: string, value: number | undefined, fallback: number, integer: boolean): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || (integer && !Number.isSafeInteger(value))) {
    throw new TypeError(`sir-webhooks: "${name}" must be a positive ${integer ? 'integer' : 'number'}, got ${String(value)}`)
  }
  return value
}

/** The order deliveries start in: mostly creation order, some swapped forward, some sent twice. */
export function planDeliveries (events: readonly KnownEvent[], duplicates: number, outOfOrder: number, random: () => number): PlannedDelivery[] {
  const order: PlannedDelivery[] = events.map((event, index) => ({ event, index, duplicate: false }))
  for (let position = 0; position < order.length - 1; position++) {
    if (random() >= outOfOrder) continue
    const later = Math.min(order.length - 1, position + 1 + Math.floor(random() * 3))
    const moved = order[position] as PlannedDelivery
    order[position] = order[later] as PlannedDelivery
    order[later] = moved
  }
  const withDuplicates = [...order]
  for (const planned of order) {
    if (random() >= duplicates) continue
    const from = withDuplicates.indexOf(planned)
    const at = Math.min(withDuplicates.length, from + 1 + Math.floor(random() * 5))
    withDuplicates.splice(at, 0, { ...planned, duplicate: true })
  }
  return withDuplicates
}

function deliveryId (): string {
  return 'dlv_' + randomBytes(8).toString('hex')
}

/**
 * Plays the platform's sender against a URL: events at a steady rate, some out
 * of order, some twice, each retried on failure with backoff and re-signed on
 * each attempt. Resolves with the full delivery history once every delivery
 * has been delivered or given up.
 */
export async function simulate (options: SimulateOptions): Promise<SimulationResult> {
  const count = positive('events', options.events, 20, true)
  const rate = positive('rate', options.rate, 10, false)
  const duplicates = share('duplicates', options.duplicates, 0.1)
  const outOfOrder = share('outOfOrder', options.outOfOrder, 0.1)
  const types = options.types ?? eventNames
  if (types.length === 0) throw new TypeError('sir-webhooks: "types" must name at least one event type')
  const random = seededRandom(options.seed ?? randomBytes(4).readUInt32LE(0))

  const intervalMs = 1000 / rate
  const start = Date.now()
  const events = planEvents(count, types, start, intervalMs, random)
  const plan = planDeliveries(events, duplicates, outOfOrder, random)

  const progress: SimulationProgress = { planned: plan.length, started: 0, finished: 0, delivered: 0, givenUp: 0, attempts: 0 }
  const report = (): void => options.onProgress?.({ ...progress })
  const { onProgress: _onProgress, events: _events, rate: _rate, duplicates: _duplicates, outOfOrder: _outOfOrder, types: _types, seed: _seed, ...sender } = options

  let highestIndex = -1
  const running: Promise<DeliveryRecord>[] = []
  for (let position = 0; position < plan.length; position++) {
    if (options.signal?.aborted === true) break
    const wait = start + position * intervalMs - Date.now()
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
    const planned = plan[position] as PlannedDelivery
    const late = planned.index < highestIndex && !planned.duplicate
    highestIndex = Math.max(highestIndex, planned.index)
    progress.started++
    report()
    running.push((async (): Promise<DeliveryRecord> => {
      const result = await deliverWithRetries(planned.event, {
        ...sender,
        onAttempt: () => { progress.attempts++; report() }
      })
      progress.finished++
      if (result.outcome === 'delivered') progress.delivered++
      if (result.outcome === 'given_up') progress.givenUp++
      report()
      return {
        deliveryId: deliveryId(),
        eventId: planned.event.id,
        type: planned.event.type,
        createdAt: planned.event.createdAt,
        data: planned.event.data as Record<string, unknown>,
        duplicate: planned.duplicate,
        outOfOrder: late,
        outcome: result.outcome,
        attempts: result.attempts
      }
    })())
  }
  const deliveries = await Promise.all(running)
  const durationMs = Date.now() - start
  return { startedAt: new Date(start).toISOString(), durationMs, deliveries, summary: summarize(deliveries, durationMs) }
}
