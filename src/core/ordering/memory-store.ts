import type { BlockedKey, OrderedEventRef, OrderingKeyCounts, OrderingStore, TakeAnswer } from './store.js'

interface KeyLine<R> {
  live: R | undefined
  /** Not yet run, oldest createdAt (then seq) first. */
  waiting: R[]
  blocked: BlockedKey | undefined
}

/** How long and how many keys' newest handled createdAt the memory store keeps. */
export interface NewestHandledBounds {
  ttlMs: number
  maxKeys: number
}

function before (a: OrderedEventRef, b: OrderedEventRef): boolean {
  return a.createdAt < b.createdAt || (a.createdAt === b.createdAt && a.seq < b.seq)
}

/**
 * The memory inbox's ordering state: one line per key with at least one event
 * not finished (a line is dropped once empty), and the newest handled createdAt
 * per key in an LRU bounded by the dedupe options (`dedupe.maxEntries` keys, for
 * `dedupe.ttlSeconds`): a key is remembered as long as an event id is. `head`
 * lets the memory inbox start the next event itself when a key frees up; a
 * shared store cannot push, and its claims ask `take` instead.
 */
export class MemoryOrderingStore<R extends OrderedEventRef = OrderedEventRef> implements OrderingStore {
  readonly scope = 'this process'
  readonly #lines = new Map<string, KeyLine<R>>()
  // Insertion order is update order: the first entry is the one to forget.
  readonly #newest = new Map<string, { createdAt: number, at: number }>()
  readonly #bounds: NewestHandledBounds
  readonly #clock: () => number
  #waitingKeys = 0
  #blockedKeys = 0

  constructor (bounds: NewestHandledBounds, clock: () => number = Date.now) {
    this.#bounds = bounds
    this.#clock = clock
  }

  enqueue (ref: R): void {
    let line = this.#lines.get(ref.key)
    if (line === undefined) {
      line = { live: undefined, waiting: [], blocked: undefined }
      this.#lines.set(ref.key, line)
    }
    const { waiting } = line
    if (waiting.length === 0) this.#waitingKeys += 1
    // Arrivals are mostly the newest: search from the end.
    let index = waiting.length
    while (index > 0 && before(ref, waiting[index - 1] as R)) index -= 1
    waiting.splice(index, 0, ref)
  }

  /** The event that would run next on this key, when none is live and the key is not blocked. */
  head (key: string): R | undefined {
    const line = this.#lines.get(key)
    if (line === undefined || line.live !== undefined || line.blocked !== undefined) return undefined
    return line.waiting[0]
  }

  take (ref: R, now: number): TakeAnswer {
    const line = this.#lines.get(ref.key)
    if (line === undefined) return { taken: false, wait: 'behind' }
    if (line.blocked !== undefined) return { taken: false, wait: 'blocked' }
    if (line.live !== undefined) return { taken: false, wait: 'busy' }
    if (line.waiting[0] !== ref) return { taken: false, wait: 'behind' }
    if (ref.notBefore > now) return { taken: false, wait: 'held', retryInMs: ref.notBefore - now }
    line.waiting.shift()
    if (line.waiting.length === 0) this.#waitingKeys -= 1
    line.live = ref
    return { taken: true, newestHandledAt: this.newestHandledAt(ref.key) }
  }

  release (ref: R, handledCreatedAt: number | undefined): void {
    const line = this.#lines.get(ref.key)
    if (line?.live === ref) line.live = undefined
    if (handledCreatedAt !== undefined) this.#remember(ref.key, handledCreatedAt)
    if (line !== undefined) this.#dropIfEmpty(ref.key, line)
  }

  block (ref: R, now: number): void {
    const line = this.#lines.get(ref.key)
    if (line === undefined || line.blocked !== undefined) return
    if (line.live === ref) line.live = undefined
    line.blocked = { key: ref.key, eventId: ref.id, since: new Date(now) }
    this.#blockedKeys += 1
  }

  unblock (key: string): boolean {
    const line = this.#lines.get(key)
    if (line?.blocked === undefined) return false
    line.blocked = undefined
    this.#blockedKeys -= 1
    this.#dropIfEmpty(key, line)
    return true
  }

  blocked (): BlockedKey[] {
    const keys: BlockedKey[] = []
    for (const line of this.#lines.values()) if (line.blocked !== undefined) keys.push({ ...line.blocked })
    return keys
  }

  counts (): OrderingKeyCounts {
    return { waiting: this.#waitingKeys, blocked: this.#blockedKeys }
  }

  /** Keys whose newest handled createdAt is remembered now (for tests of the bound). */
  get rememberedKeys (): number {
    return this.#newest.size
  }

  newestHandledAt (key: string): number | undefined {
    const entry = this.#newest.get(key)
    if (entry === undefined) return undefined
    if (this.#clock() - entry.at > this.#bounds.ttlMs) {
      this.#newest.delete(key)
      return undefined
    }
    return entry.createdAt
  }

  /** Forgets every line (close()): the events themselves are dead-lettered by the queue. */
  clear (): void {
    this.#lines.clear()
    this.#waitingKeys = 0
    this.#blockedKeys = 0
  }

  #remember (key: string, createdAt: number): void {
    const known = this.newestHandledAt(key)
    const newest = known === undefined ? createdAt : Math.max(known, createdAt)
    this.#newest.delete(key)
    this.#newest.set(key, { createdAt: newest, at: this.#clock() })
    if (this.#newest.size > this.#bounds.maxKeys) {
      const oldest = this.#newest.keys().next()
      if (oldest.done !== true) this.#newest.delete(oldest.value)
    }
  }

  #dropIfEmpty (key: string, line: KeyLine<R>): void {
    if (line.live === undefined && line.blocked === undefined && line.waiting.length === 0) this.#lines.delete(key)
  }
}
