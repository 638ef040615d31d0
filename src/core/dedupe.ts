import { LRUCache } from 'lru-cache'
import type { DedupeOptions } from './options.js'

/**
 * Remembers event ids for a retention window. Bounded twice: by time (TTL) and
 * by count (LRU), so a flood of distinct ids cannot grow memory without end.
 */
export class SeenIds {
  readonly #cache: LRUCache<string, true>

  constructor (options: Required<DedupeOptions>, clock: () => number) {
    this.#cache = new LRUCache<string, true>({
      max: options.maxEntries,
      ttl: options.ttlSeconds * 1000,
      // The receiver's clock, so tests can age entries without waiting a week.
      perf: { now: clock },
      // lru-cache otherwise caches "now" for 1 ms behind a timer; reading the
      // clock on each check costs nothing next to an HMAC and keeps tests exact.
      ttlResolution: 0,
      // Expired entries are dropped when touched; no timer keeps the process alive.
      ttlAutopurge: false
    })
  }

  has (id: string): boolean {
    return this.#cache.has(id)
  }

  add (id: string): void {
    this.#cache.set(id, true)
  }

  delete (id: string): void {
    this.#cache.delete(id)
  }

  get size (): number {
    return this.#cache.size
  }
}
