import type { RateLimit } from './limits.js'
import type { FlowStore, PauseState } from './store.js'

interface Bucket {
  tokens: number
  at: number
}

/**
 * Flow-control state kept in this process: the memory inbox's, since its events
 * live and run in this process only. `now` is injectable for tests of the bucket.
 */
export class MemoryFlowStore implements FlowStore {
  readonly scope = 'this process'
  readonly #buckets = new Map<string, Bucket>()
  readonly #now: () => number
  readonly #paused = new Set<string>()
  // One object, replaced on change: read on every handler run, so no allocation there.
  #state: PauseState = { all: false, handlers: this.#paused }

  constructor (now: () => number = Date.now) {
    this.#now = now
  }

  takeToken (handler: string, rate: Required<RateLimit>, reserve = false): number {
    const now = this.#now()
    const bucket = this.#buckets.get(handler) ?? { tokens: rate.burst, at: now }
    this.#buckets.set(handler, bucket)
    bucket.tokens = Math.min(rate.burst, bucket.tokens + Math.max(0, now - bucket.at) * rate.perSecond / 1000)
    bucket.at = now
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1
      return 0
    }
    const waitMs = Math.max(1, Math.ceil((1 - bucket.tokens) * 1000 / rate.perSecond))
    if (reserve) bucket.tokens -= 1
    return waitMs
  }

  setPaused (handler: string | undefined, paused: boolean): void {
    let all = this.#state.all
    if (handler === undefined) {
      all = paused
      // resume() without a name resumes everything, the handlers paused by name too.
      if (!paused) this.#paused.clear()
    } else if (paused) {
      this.#paused.add(handler)
    } else {
      this.#paused.delete(handler)
    }
    this.#state = { all, handlers: this.#paused }
  }

  pauseState (): PauseState {
    return this.#state
  }
}
