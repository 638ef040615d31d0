import type { WebhookLogger } from './logger.js'
import { WebhookOptionsError } from './errors.js'
import { assertKnownOptions } from './known-options.js'
import type { Inbox } from './inbox.js'
import type { TelemetryOptions } from './telemetry-types.js'
import type { DedupeOptions, ResolvedOptions, RetryLaterOptions, RetryOptions } from './resolved-options.js'
import { resolveOrdering, type OrderingOptions } from './ordering/options.js'

export type { DedupeOptions, ResolvedOptions, RetryLaterOptions, RetryOptions } from './resolved-options.js'
import { DEFAULT_TOLERANCE_SECONDS, type Secret } from './signature-checks.js'

export interface WebhooksOptions<I extends Inbox = Inbox> {
  /** The signing secret, or several (newest first) while rotating. */
  secret: Secret
  /** Accepted clock distance between sender and receiver, in seconds. Default 300. */
  toleranceSeconds?: number
  /** Handlers running at once. Default 10. */
  concurrency?: number
  /**
   * Events accepted and not yet finished (waiting plus running) before new ones
   * get 503. Default 10 000, for the memory inbox. A durable inbox bounds its
   * backlog with its own `maxBacklog` (default 1 000 000); set here, this number
   * bounds it too, the lower of the two winning.
   */
  maxQueueSize?: number
  retry?: RetryOptions
  dedupe?: DedupeOptions
  /** Largest body accepted, in bytes. Default 1 MiB. */
  bodyLimit?: number
  /** `Retry-After` sent with every 503, in seconds. Default 5. */
  retryAfterSeconds?: number
  /** How long `close()` waits for accepted events before dead-lettering the rest. Default 10 000. */
  closeGraceMs?: number
  /** A pino logger. Default: a new pino logger at `info`. */
  logger?: WebhookLogger
  /** Milliseconds since the epoch; tests set it to move time. Default `Date.now`. */
  clock?: () => number
  /** Where accepted events wait. Default: in memory, with the dedupe and queue options above. */
  inbox?: I
  /**
   * `health()` reports `degraded` from this many events accepted and not finished.
   * Default: 80% of the bound that answers 503: `maxQueueSize`, or a durable
   * inbox's `maxBacklog` (and `maxQueueSize` when set, the lower of the two).
   */
  degradedQueueSize?: number
  /**
   * Where OpenTelemetry metrics and spans go. Default: the global providers, when
   * `@opentelemetry/api` is installed and an SDK registered them before the
   * receiver was made. `false`: none, whatever is registered.
   */
  telemetry?: TelemetryOptions | false
  /**
   * The bound on a handler's `throw new RetryLater()`: past it, the run counts as
   * a failed attempt. Default `{ maxDeferrals: 100, maxDeferredMs: 86_400_000 }`.
   */
  retryLater?: RetryLaterOptions
  /**
   * Events with the same key run one at a time, oldest `createdAt` first, and a
   * late one is flagged stale (docs/ordering.md). The memory inbox has it.
   */
  ordering?: OrderingOptions
}

export const defaults = {
  toleranceSeconds: DEFAULT_TOLERANCE_SECONDS,
  concurrency: 10,
  maxQueueSize: 10_000,
  retry: { attempts: 5, minDelayMs: 500, maxDelayMs: 30_000 },
  dedupe: { ttlSeconds: 7 * 24 * 60 * 60, maxEntries: 100_000 },
  bodyLimit: 1024 * 1024,
  retryAfterSeconds: 5,
  closeGraceMs: 10_000,
  retryLater: { maxDeferrals: 100, maxDeferredMs: 24 * 60 * 60 * 1000 }
} as const

/** Every name `WebhooksOptions` has: anything else is a typo, refused rather than ignored. */
// Keyed by the options type, as the inboxes' lists are: an option added to
// WebhooksOptions and left out here does not compile.
const RECEIVER_OPTIONS = Object.keys({
  secret: true,
  toleranceSeconds: true,
  concurrency: true,
  maxQueueSize: true,
  retry: true,
  dedupe: true,
  bodyLimit: true,
  retryAfterSeconds: true,
  closeGraceMs: true,
  logger: true,
  clock: true,
  inbox: true,
  degradedQueueSize: true,
  telemetry: true,
  retryLater: true,
  ordering: true
} satisfies Record<keyof WebhooksOptions, true>)

function describe (value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (Array.isArray(value)) return 'an array'
  return value === null ? 'null' : typeof value === 'object' ? 'an object' : String(value)
}

export function integer (name: string, value: unknown, fallback: number, minimum: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < minimum) {
    const expected = minimum === 0 ? 'a non-negative integer' : minimum === 1 ? 'a positive integer' : `an integer of at least ${minimum}`
    throw new WebhookOptionsError(`"${name}" must be ${expected}, got ${describe(value)}`)
  }
  return value
}

function object (name: string, value: unknown): Record<string, unknown> {
  if (value === undefined) return {}
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new WebhookOptionsError(`"${name}" must be an object, got ${describe(value)}`)
  }
  return value as Record<string, unknown>
}

export function resolveSecrets (value: unknown, name = 'secret'): readonly string[] {
  const secrets = typeof value === 'string' ? [value] : value
  if (!Array.isArray(secrets) || secrets.length === 0) {
    throw new WebhookOptionsError(`"${name}" must be a non-empty string or a non-empty array of strings (newest first), got ${value === undefined ? 'nothing' : describe(value)}`)
  }
  secrets.forEach((secret: unknown, index) => {
    // The value is never echoed: it is a secret, and error messages end up in logs.
    const where = Array.isArray(value) ? `"${name}[${index}]"` : `"${name}"`
    if (typeof secret !== 'string' || secret.length === 0) {
      throw new WebhookOptionsError(`${where} must be a non-empty string`)
    }
    if (secret.trim() !== secret) {
      throw new WebhookOptionsError(`${where} has leading or trailing whitespace; copy the secret exactly as SIR Giving showed it`)
    }
  })
  return Object.freeze([...secrets as string[]])
}

/**
 * The number of unfinished events at which deliveries get 503: a durable
 * inbox's own bound, by the rule of `backlogLimit` in core/backlog-bound.ts
 * (not imported: that module takes `integer` from this one), else `maxQueueSize`.
 */
function queueBound (inbox: Inbox | undefined, maxQueueSize: number, maxQueueSizeSet: boolean): number {
  const own = inbox?.maxBacklog
  if (typeof own !== 'number') return maxQueueSize
  return maxQueueSizeSet ? Math.min(own, maxQueueSize) : own
}

export function resolveOptions (options: WebhooksOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') {
    throw new WebhookOptionsError(`options must be an object with at least "secret", got ${describe(options)}`)
  }
  assertKnownOptions(options, RECEIVER_OPTIONS, 'new Webhooks(options)')
  const retry = object('retry', options.retry)
  const dedupe = object('dedupe', options.dedupe)
  const retryLater = object('retryLater', options.retryLater)
  assertKnownOptions(retryLater, ['maxDeferrals', 'maxDeferredMs'], 'new Webhooks(options.retryLater)')
  assertKnownOptions(retry, ['attempts', 'minDelayMs', 'maxDelayMs'], 'new Webhooks(options.retry)')
  assertKnownOptions(dedupe, ['ttlSeconds', 'maxEntries'], 'new Webhooks(options.dedupe)')
  const minDelayMs = integer('retry.minDelayMs', retry.minDelayMs, defaults.retry.minDelayMs, 0)
  const maxDelayMs = integer('retry.maxDelayMs', retry.maxDelayMs, Math.max(defaults.retry.maxDelayMs, minDelayMs), 0)
  if (maxDelayMs < minDelayMs) {
    throw new WebhookOptionsError(`"retry.maxDelayMs" (${maxDelayMs}) must not be less than "retry.minDelayMs" (${minDelayMs})`)
  }
  if (options.clock !== undefined && typeof options.clock !== 'function') {
    throw new WebhookOptionsError(`"clock" must be a function returning milliseconds since the epoch, got ${describe(options.clock)}`)
  }
  const maxQueueSize = integer('maxQueueSize', options.maxQueueSize, defaults.maxQueueSize, 1)
  const maxQueueSizeSet = options.maxQueueSize !== undefined
  return {
    secrets: resolveSecrets(options.secret),
    toleranceSeconds: integer('toleranceSeconds', options.toleranceSeconds, defaults.toleranceSeconds, 1),
    concurrency: integer('concurrency', options.concurrency, defaults.concurrency, 1),
    maxQueueSize,
    maxQueueSizeSet,
    retry: {
      attempts: integer('retry.attempts', retry.attempts, defaults.retry.attempts, 1),
      minDelayMs,
      maxDelayMs
    },
    dedupe: {
      ttlSeconds: integer('dedupe.ttlSeconds', dedupe.ttlSeconds, defaults.dedupe.ttlSeconds, 1),
      maxEntries: integer('dedupe.maxEntries', dedupe.maxEntries, defaults.dedupe.maxEntries, 1)
    },
    bodyLimit: integer('bodyLimit', options.bodyLimit, defaults.bodyLimit, 1),
    retryAfterSeconds: integer('retryAfterSeconds', options.retryAfterSeconds, defaults.retryAfterSeconds, 0),
    closeGraceMs: integer('closeGraceMs', options.closeGraceMs, defaults.closeGraceMs, 0),
    degradedQueueSize: integer('degradedQueueSize', options.degradedQueueSize, Math.max(1, Math.floor(queueBound(options.inbox, maxQueueSize, maxQueueSizeSet) * 0.8)), 1),
    retryLater: {
      maxDeferrals: integer('retryLater.maxDeferrals', retryLater.maxDeferrals, defaults.retryLater.maxDeferrals, 0),
      maxDeferredMs: integer('retryLater.maxDeferredMs', retryLater.maxDeferredMs, defaults.retryLater.maxDeferredMs, 0)
    },
    ordering: resolveOrdering(options.ordering),
    clock: options.clock ?? Date.now
  }
}
