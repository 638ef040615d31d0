import { WebhookOptionsError } from './errors.js'
import type { OutcomeState } from './outcome.js'

/**
 * Which stored events a replay touches (`sir-webhooks inbox redrive --type …`,
 * `webhooks.replay(filter)`, the dashboard's filtered redrive). Every field but
 * `state` narrows the set; all are ANDed.
 */
export interface ReplayFilter {
  /** `dead`: re-drive dead letters. `done`: re-run finished events (a deliberate replay after a handler fix). */
  state: Exclude<OutcomeState, 'pending'>
  /** Only events of this type. */
  type?: string
  /** Only events received at or after this moment. */
  since?: Date
  /** Only events received before this moment. */
  until?: Date
  /**
   * Only this handler: for `dead`, events this handler failed; for `done`, only
   * this handler is run again (the others keep their "handled" mark).
   */
  handler?: string
}

/** A `ReplayFilter` checked once, for every store: times in ms, what the SQL of each may rely on. */
export interface CheckedReplayFilter {
  state: 'done' | 'dead'
  type: string | undefined
  since: number | undefined
  until: number | undefined
  handler: string | undefined
}

/** How a requeue is bounded. */
export interface RequeueOptions {
  /**
   * Queue at most this many: the count an operator confirmed (`inbox redrive`'s
   * `--yes`, the dashboard's confirmation). Events that match only since the
   * count are left alone rather than touched unconfirmed.
   */
  max?: number
}

/** Checks a filter as the stores need it; `where` names the call in the message (`requeue(filter)`). */
export function checkReplayFilter (filter: ReplayFilter, where: string): CheckedReplayFilter {
  if (typeof filter !== 'object' || filter === null) throw new WebhookOptionsError(`${where}: the filter must be an object such as { state: 'dead' }`)
  const { state, type, since, until, handler } = filter
  if (state !== 'done' && state !== 'dead') throw new WebhookOptionsError(`${where}: "state" must be 'dead' or 'done', got ${JSON.stringify(state)}`)
  for (const [name, value] of [['type', type], ['handler', handler]] as const) {
    if (value !== undefined && (typeof value !== 'string' || value === '')) throw new WebhookOptionsError(`${where}: "${name}" must be a non-empty string`)
  }
  for (const [name, value] of [['since', since], ['until', until]] as const) {
    if (value !== undefined && (!(value instanceof Date) || Number.isNaN(value.getTime()))) throw new WebhookOptionsError(`${where}: "${name}" must be a valid Date`)
  }
  if (since !== undefined && until !== undefined && since.getTime() >= until.getTime()) {
    throw new WebhookOptionsError(`${where}: "since" (${since.toISOString()}) must be before "until" (${until.toISOString()}), or no event can match`)
  }
  return { state, type, since: since?.getTime(), until: until?.getTime(), handler }
}
