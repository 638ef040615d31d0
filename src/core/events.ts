/**
 * Event types as the platform documents them. Only `action.completed`'s data is
 * documented (`actionId`, `tokensDistributed`); the others are open records, so
 * the types promise nothing the contract does not, and new fields pass through.
 */

/** Data the contract does not describe: read it, but check before you trust it. */
export type UndocumentedData = Record<string, unknown>

export interface ActionCompletedData extends UndocumentedData {
  actionId: string
  tokensDistributed: number
}

export interface EventDataMap {
  'action.completed': ActionCompletedData
  'action.failed': UndocumentedData
  'action.reversed': UndocumentedData
  'transaction.completed': UndocumentedData
  'transaction.reversed': UndocumentedData
  'token_pool.low_balance': UndocumentedData
  'token_pool.depleted': UndocumentedData
  'token_pool.refilled': UndocumentedData
  'token_pool_request.approved': UndocumentedData
  'token_pool_request.rejected': UndocumentedData
  'campaign.activated': UndocumentedData
  'campaign.paused': UndocumentedData
  'campaign.completed': UndocumentedData
  'api_key.expiring': UndocumentedData
}

export type EventName = keyof EventDataMap

/** The documented event types, in the contract's order. */
export const eventNames: readonly EventName[] = [
  'action.completed',
  'action.failed',
  'action.reversed',
  'transaction.completed',
  'transaction.reversed',
  'token_pool.low_balance',
  'token_pool.depleted',
  'token_pool.refilled',
  'token_pool_request.approved',
  'token_pool_request.rejected',
  'campaign.activated',
  'campaign.paused',
  'campaign.completed',
  'api_key.expiring'
]

/** The envelope every delivery carries, as checked on receipt. Fields beyond these pass through untouched. */
export interface WebhookEvent<TType extends string = string, TData extends UndocumentedData = UndocumentedData> {
  id: string
  type: TType
  /** ISO 8601 as the platform sends it; checked to be a non-empty string, its format is not. */
  createdAt: string
  /** Always an object (an envelope whose `data` is missing, null or not an object is refused). */
  data: TData
  [field: string]: unknown
}

export type EventMap = { [K in EventName]: WebhookEvent<K, EventDataMap[K]> }

/** Any documented event, narrowed by `type`. */
export type KnownEvent = EventMap[EventName]

/** What `onAny` receives: a documented event, or one of a type this version does not know. */
export type AnyEvent = KnownEvent | WebhookEvent<string, UndocumentedData>
