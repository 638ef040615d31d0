import { randomBytes } from 'node:crypto'
import type { EventDataMap, EventMap, EventName } from '../core/events.js'

/** A fresh id in the platform's `evt_` form; random, so tests never collide in a dedupe store. */
export function createEventId (): string {
  return 'evt_' + randomBytes(12).toString('hex')
}

function shortId (prefix: string): string {
  return prefix + randomBytes(6).toString('hex')
}

const DAY_MS = 24 * 60 * 60 * 1000

/**
 * Default data per type. Only `action.completed`'s fields are documented; the
 * others are plausible stand-ins so handlers have something realistic to read,
 * not a promise of what the platform sends.
 */
const defaultData: { [K in EventName]: () => EventDataMap[K] } = {
  'action.completed': () => ({ actionId: shortId('act_'), tokensDistributed: 50 }),
  'action.failed': () => ({ actionId: shortId('act_'), reason: 'validation_failed', message: 'The action did not meet the campaign rules' }),
  'action.reversed': () => ({ actionId: shortId('act_'), tokensReversed: 50, partial: false, reason: 'refund' }),
  'transaction.completed': () => ({ transactionId: shortId('txn_'), actionId: shortId('act_'), tokens: 50 }),
  'transaction.reversed': () => ({ transactionId: shortId('txn_'), tokensReversed: 50, reason: 'refund' }),
  'token_pool.low_balance': () => ({ poolId: shortId('pool_'), balance: 900, threshold: 1000 }),
  'token_pool.depleted': () => ({ poolId: shortId('pool_'), balance: 0 }),
  'token_pool.refilled': () => ({ poolId: shortId('pool_'), amount: 10_000, balance: 10_900 }),
  'token_pool_request.approved': () => ({ requestId: shortId('tpr_'), poolId: shortId('pool_'), amount: 5000 }),
  'token_pool_request.rejected': () => ({ requestId: shortId('tpr_'), poolId: shortId('pool_'), amount: 5000, reason: 'insufficient_budget' }),
  'campaign.activated': () => ({ campaignId: shortId('cmp_'), name: 'Spring giving', status: 'active' }),
  'campaign.paused': () => ({ campaignId: shortId('cmp_'), name: 'Spring giving', status: 'paused' }),
  'campaign.completed': () => ({ campaignId: shortId('cmp_'), name: 'Spring giving', status: 'completed' }),
  'api_key.expiring': () => ({ keyId: shortId('key_'), expiresAt: new Date(Date.now() + 14 * DAY_MS).toISOString() })
}

export interface CreateEventOptions {
  /** Default: a fresh `evt_` id. Reuse one to test deduplication. */
  id?: string
  /** Default: now, as ISO 8601. */
  createdAt?: string | Date
}

/**
 * A well-formed envelope of a documented type, with a fresh `evt_` id. `data`
 * is merged over realistic defaults, so a test names only the fields it cares about.
 */
export function createEvent<K extends EventName> (type: K, data?: Partial<EventDataMap[K]>, options: CreateEventOptions = {}): EventMap[K] {
  const makeDefault = defaultData[type] as (() => EventDataMap[K]) | undefined
  if (makeDefault === undefined) {
    throw new TypeError(`sir-webhooks: createEvent(type): "type" must be one of the documented event types, got ${JSON.stringify(type)}`)
  }
  const createdAt = options.createdAt instanceof Date ? options.createdAt.toISOString() : options.createdAt ?? new Date().toISOString()
  return {
    id: options.id ?? createEventId(),
    type,
    createdAt,
    data: { ...makeDefault(), ...data }
  } as EventMap[K]
}
