import type { AnyEvent } from '../events.js'
import { WebhookOptionsError } from '../errors.js'
import { assertKnownOptions } from '../known-options.js'

/** The receiver's `ordering` option (docs/ordering.md). */
export interface OrderingOptions {
  /**
   * The event's ordering key: events with the same key run one at a time, oldest
   * `createdAt` first. `undefined`: the event is not ordered. Called once per
   * accepted event, after verification and dedupe; a throw leaves the event unordered.
   */
  key: (event: AnyEvent) => string | undefined
  /** When an ordered event dead-letters: `skip` (default) moves its key on; `block` holds the key until `unblock(key)`. */
  onDeadLetter?: 'skip' | 'block'
  /** Events flagged stale are not run: done, with the outcome `stale`. Default false: the handler decides. */
  skipStale?: boolean
  /** How long each ordered event waits after acceptance before it may run, so an older one delivered late overtakes it. Default 0. */
  holdMs?: number
}

export interface ResolvedOrdering {
  readonly key: (event: AnyEvent) => string | undefined
  readonly onDeadLetter: 'skip' | 'block'
  readonly skipStale: boolean
  readonly holdMs: number
}

const ORDERING_OPTIONS = Object.keys({ key: true, onDeadLetter: true, skipStale: true, holdMs: true } satisfies Record<keyof OrderingOptions, true>)

function describe (value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (Array.isArray(value)) return 'an array'
  return value === null ? 'null' : typeof value === 'object' ? 'an object' : String(value)
}

/** Checks `ordering` at construction; the messages name the option. Undefined when it is not set. */
export function resolveOrdering (value: unknown): ResolvedOrdering | undefined {
  if (value === undefined) return undefined
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new WebhookOptionsError(`"ordering" must be an object such as { key: (event) => event.data.actionId }, got ${describe(value)}`)
  }
  assertKnownOptions(value, ORDERING_OPTIONS, 'new Webhooks(options.ordering)')
  const { key, onDeadLetter = 'skip', skipStale = false, holdMs = 0 } = value as Record<string, unknown>
  if (typeof key !== 'function') {
    throw new WebhookOptionsError(`"ordering.key" must be a function of the event returning a string or undefined, got ${describe(key)}`)
  }
  if (onDeadLetter !== 'skip' && onDeadLetter !== 'block') {
    throw new WebhookOptionsError(`"ordering.onDeadLetter" must be "skip" or "block", got ${describe(onDeadLetter)}`)
  }
  if (typeof skipStale !== 'boolean') {
    throw new WebhookOptionsError(`"ordering.skipStale" must be true or false, got ${describe(skipStale)}`)
  }
  // A day at most: a hold is a reorder window for retries minutes apart, not a schedule.
  if (typeof holdMs !== 'number' || !Number.isSafeInteger(holdMs) || holdMs < 0 || holdMs > 86_400_000) {
    throw new WebhookOptionsError(`"ordering.holdMs" must be an integer of milliseconds from 0 to 86 400 000 (a day), got ${describe(holdMs)}`)
  }
  return Object.freeze({ key: key as ResolvedOrdering['key'], onDeadLetter, skipStale, holdMs })
}
