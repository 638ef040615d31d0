import { WebhookOptionsError } from '../errors.js'

/** A token bucket: `perSecond` tokens a second, at most `burst` saved up. */
export interface RateLimit {
  /** Runs a second, on average. May be fractional: 0.5 is one run every two seconds. */
  perSecond: number
  /** Runs that may start back to back after a quiet spell. Default 1: evenly paced. */
  burst?: number
}

/** A handler's flow-control options, as `on(type, fn, { concurrency, rate })` takes them. */
export interface HandlerLimits {
  /** Runs of this handler at once (in this process; on SQLite, across the processes on the file: docs/design.md). */
  concurrency?: number
  rate?: RateLimit
}

export interface ResolvedLimits {
  readonly concurrency?: number
  readonly rate?: Readonly<Required<RateLimit>>
}

function describe (value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : value === null ? 'null' : typeof value === 'object' ? 'an object' : String(value)
}

/** Checks `concurrency` and `rate` at registration; the messages name the option. Undefined when neither is set. */
export function resolveLimits (options: { concurrency?: unknown, rate?: unknown }, method: string): ResolvedLimits | undefined {
  const { concurrency, rate } = options
  if (concurrency === undefined && rate === undefined) return undefined
  const limits: { concurrency?: number, rate?: Required<RateLimit> } = {}
  if (concurrency !== undefined) {
    if (typeof concurrency !== 'number' || !Number.isSafeInteger(concurrency) || concurrency < 1) {
      throw new WebhookOptionsError(`${method}(): "concurrency" must be a positive integer, got ${describe(concurrency)}`)
    }
    limits.concurrency = concurrency
  }
  if (rate !== undefined) {
    if (rate === null || typeof rate !== 'object' || Array.isArray(rate)) {
      throw new WebhookOptionsError(`${method}(): "rate" must be an object such as { perSecond: 20, burst: 5 }, got ${describe(rate)}`)
    }
    for (const key of Object.keys(rate)) {
      if (key !== 'perSecond' && key !== 'burst') throw new WebhookOptionsError(`${method}(): unknown option "rate.${key}"; the rate options are "perSecond", "burst"`)
    }
    const { perSecond, burst = 1 } = rate as { perSecond?: unknown, burst?: unknown }
    if (typeof perSecond !== 'number' || !Number.isFinite(perSecond) || perSecond <= 0) {
      throw new WebhookOptionsError(`${method}(): "rate.perSecond" must be a positive number, got ${describe(perSecond)}`)
    }
    if (typeof burst !== 'number' || !Number.isSafeInteger(burst) || burst < 1) {
      throw new WebhookOptionsError(`${method}(): "rate.burst" must be a positive integer, got ${describe(burst)}`)
    }
    limits.rate = Object.freeze({ perSecond, burst })
  }
  return Object.freeze(limits)
}
