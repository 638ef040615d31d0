import type { AnyEvent } from './events.js'
import { assertNotStarted, type AcceptOutcome, type Inbox, type InboxRuntime } from './inbox.js'
import { SeenIds } from './dedupe.js'
import { bodyFingerprint } from './fingerprint.js'
import { MemoryQueue } from './queue.js'
import { settlesWithin } from './timeouts.js'
import { MemoryFlowStore } from './flow/memory-store.js'
import type { FlowStore } from './flow/store.js'
import { MemoryOrderingStore } from './ordering/memory-store.js'
import type { OrderedRef } from './queued-event.js'
import type { ResolvedOptions } from './resolved-options.js'

/**
 * The default inbox: ids remembered in an LRU with TTL, events queued in this
 * process. Fast and dependency-free, but a crash loses what was accepted and
 * not yet handled; use a durable inbox where that matters. With each id it keeps
 * a 4-byte fingerprint of the body (core/fingerprint.ts), not the body, so a
 * duplicate whose body differs is told apart at a bounded cost per id.
 */
export class MemoryInbox implements Inbox {
  #runtime: InboxRuntime | undefined
  #seen: SeenIds | undefined
  #queue: MemoryQueue | undefined
  #orderingStore: MemoryOrderingStore<OrderedRef> | undefined

  /** Flow control kept in this process, where the events live. */
  flowStore (): FlowStore {
    return new MemoryFlowStore()
  }

  /** Ordering kept in this process; each key's newest handled createdAt as long and as many as the dedupe options keep ids. */
  orderingStore (options: ResolvedOptions): MemoryOrderingStore<OrderedRef> {
    this.#orderingStore = new MemoryOrderingStore({ ttlMs: options.dedupe.ttlSeconds * 1000, maxKeys: options.dedupe.maxEntries }, options.clock)
    return this.#orderingStore
  }

  get oldestReceivedAt (): number | undefined {
    return this.#queue?.oldestReceivedAt
  }

  start (runtime: InboxRuntime): void {
    assertNotStarted(this.#runtime !== undefined)
    this.#runtime = runtime
    this.#seen = new SeenIds(runtime.options.dedupe, runtime.options.clock)
    this.#queue = new MemoryQueue(runtime, this.#orderingStore)
  }

  get size (): number {
    return this.#queue?.size ?? 0
  }

  get running (): number {
    return this.#queue?.running ?? 0
  }

  /** Resolves when no accepted event is waiting, running or backing off. */
  idle (): Promise<void> {
    return this.#queue?.idle() ?? Promise.resolve()
  }

  accept (event: AnyEvent, receivedAt: number, whenAnswered?: (callback: () => void) => void, waitUntil?: (handlersFinished: Promise<void>) => void, rawBody?: Uint8Array): AcceptOutcome {
    const runtime = this.#runtime
    const seen = this.#seen
    const queue = this.#queue
    if (runtime === undefined || seen === undefined || queue === undefined) return 'unavailable'
    // Checked and recorded in one synchronous step: two concurrent deliveries
    // of one id cannot both pass, and a refused event is never marked seen.
    // A duplicate counts as seen: the id the sender keeps retrying is the last forgotten.
    const recorded = seen.recall(event.id)
    if (recorded !== undefined) {
      // 0 on either side: no body to compare, which is not a difference.
      return recorded === 0 || rawBody === undefined || bodyFingerprint(rawBody) === recorded ? 'duplicate' : 'duplicate-differs'
    }
    if (queue.size >= runtime.options.maxQueueSize) return 'full'
    // Queued first, then marked seen: if queueing throws, the id stays unseen
    // and the sender's retry (after the 503) is processed.
    queue.push(event, receivedAt, runtime.handlersFor(event.type), whenAnswered, waitUntil)
    seen.add(event.id, rawBody === undefined ? 0 : bodyFingerprint(rawBody))
    return 'accepted'
  }

  async close (graceMs: number): Promise<void> {
    const runtime = this.#runtime
    const queue = this.#queue
    if (runtime === undefined || queue === undefined) return
    const left = await queue.drain(graceMs)
    // Every dead letter is started at once: each is logged, with its event id,
    // before its first await, so all of them are on record even if the process is
    // killed while callbacks run. The callbacks get one more grace period, not one each.
    const reported = Promise.all(left.map(({ event, receivedAt, handler, attempts }) => runtime.deadLetter({
      event,
      reason: 'shutdown',
      handler: handler.name,
      attempts,
      receivedAt: new Date(receivedAt)
    })))
    if (!await settlesWithin(reported, graceMs)) {
      runtime.logger.warn({ graceMs }, 'onDeadLetter callbacks did not finish within the grace period; close() goes on')
    }
  }
}
