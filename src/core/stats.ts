import { refusalStatus, type RefusalCode } from './errors.js'
import type { ReceiveCode } from './delivery.js'
import type { FlowStats } from './flow/snapshot.js'
import type { OrderingStats } from './ordering/engine.js'
import type { RegisteredHandler } from './handlers.js'
import { HandlerFigures, type HandlerStats } from './handler-figures.js'

export type { FlowStats } from './flow/snapshot.js'
export type { HandlerStats } from './handler-figures.js'

/** What `webhooks.stats()` returns: counts since this receiver was made, in this process. */
export interface WebhookStats {
  deliveries: {
    /** Deliveries answered 2xx that queued their event. */
    accepted: number
    /** Deliveries answered 2xx for an event already recorded. */
    duplicate: number
    /** Of `duplicate`, those whose body differed from the one first recorded under the id (where the inbox can tell). */
    duplicateDiffers: number
    /** Deliveries answered with an error status, whatever the reason. */
    refused: number
    /** `refused`, by the code the receiver answered with; every code is present. */
    refusedBy: Record<RefusalCode, number>
  }
  queue: {
    /** Events accepted and not finished that no handler of this process is running now. */
    waiting: number
    /** Events a handler of this process is running now. */
    running: number
  }
  handlers: {
    /** Handler runs that finished. */
    succeeded: number
    /** Failed handler runs that will be tried again. */
    retried: number
    /** Handler runs that failed for good: their last attempt. */
    failed: number
    /**
     * The same per handler name, with runs and p50/p99 run duration: every handler
     * registered now, and any that ran here before it was removed.
     */
    byName: Record<string, HandlerStats>
  }
  /** Events dead-lettered: a handler failed for good, or shutdown came first. */
  deadLetters: number
  /** Flow control: deferrals and pauses per handler, and the oldest event still waiting. */
  flow: FlowStats
  /** With the `ordering` option: keys waiting and blocked, stale events, keys moved past dead letters. */
  ordering?: OrderingStats
}

/** Events accepted and not finished (what `maxQueueSize` counts), and those running here now. */
export interface QueueCounts {
  size: number
  running: number
  /** When the oldest event accepted and not finished was received, where the inbox can tell. */
  oldestReceivedAt?: number | undefined
}

const refusalCodes = Object.keys(refusalStatus) as RefusalCode[]

/**
 * The receiver's counters. Plain fields bumped in place: on the hot path a
 * delivery costs one increment here, whether or not OpenTelemetry is on.
 */
export class ReceiverStats {
  accepted = 0
  duplicate = 0
  duplicateDiffers = 0
  refused = 0
  readonly refusedBy = Object.fromEntries(refusalCodes.map((code) => [code, 0])) as Record<RefusalCode, number>
  succeeded = 0
  retried = 0
  failed = 0
  deadLetters = 0
  /** Per handler name; made on a handler's first run, so bounded by the handlers registered. */
  readonly #byName = new Map<string, HandlerFigures>()

  /** The figures of one handler, made on first use. */
  handler (name: string): HandlerFigures {
    let figures = this.#byName.get(name)
    if (figures === undefined) {
      figures = new HandlerFigures()
      this.#byName.set(name, figures)
    }
    return figures
  }

  delivered (code: ReceiveCode): void {
    if (code === 'ACCEPTED') this.accepted += 1
    else if (code === 'DUPLICATE') this.duplicate += 1
    else {
      this.refused += 1
      this.refusedBy[code] += 1
    }
  }

  /** `registered`: the receiver's handlers now, listed with their limits even before they ran. */
  snapshot (queue: QueueCounts, registered: readonly RegisteredHandler[] = []): Omit<WebhookStats, 'flow'> {
    const byName: Record<string, HandlerStats> = {}
    const limits = new Map(registered.map((handler) => [handler.name, handler.limits]))
    for (const name of new Set([...limits.keys(), ...this.#byName.keys()])) {
      byName[name] = (this.#byName.get(name) ?? new HandlerFigures()).snapshot(limits.get(name))
    }
    return {
      deliveries: { accepted: this.accepted, duplicate: this.duplicate, duplicateDiffers: this.duplicateDiffers, refused: this.refused, refusedBy: { ...this.refusedBy } },
      queue: { waiting: Math.max(0, queue.size - queue.running), running: queue.running },
      handlers: { succeeded: this.succeeded, retried: this.retried, failed: this.failed, byName },
      deadLetters: this.deadLetters
    }
  }
}
