import { WebhookOptionsError } from './errors.js'
import type { EventQuery } from './inbox.js'
import type { OutcomeState } from './outcome.js'

/** An `EventQuery` checked once, for every store: what the SQL of each may rely on. */
export interface CheckedEventQuery {
  type: string | undefined
  state: OutcomeState | undefined
  since: number | undefined
  until: number | undefined
  limit: number
  /** `ASC` or `DESC`: written into the SQL, so only ever one of these two. */
  order: 'ASC' | 'DESC'
  /** A handler key to find in the attempt log; a store without one refuses the query. */
  handler: string | undefined
}

const STATES: readonly string[] = ['pending', 'done', 'dead']

export function checkEventQuery (query: EventQuery = {}): CheckedEventQuery {
  const { type, state, since, until, limit = 50 } = query
  if (type !== undefined && typeof type !== 'string') throw new WebhookOptionsError('events(query): "type" must be a string')
  if (state !== undefined && !STATES.includes(state)) throw new WebhookOptionsError(`events(query): "state" must be pending, done or dead, got ${JSON.stringify(state)}`)
  for (const [name, value] of [['since', since], ['until', until]] as const) {
    if (value !== undefined && (!(value instanceof Date) || Number.isNaN(value.getTime()))) throw new WebhookOptionsError(`events(query): "${name}" must be a valid Date`)
  }
  if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new WebhookOptionsError(`events(query): "limit" must be an integer from 1 to 500, got ${JSON.stringify(limit)}`)
  if (query.oldestFirst !== undefined && typeof query.oldestFirst !== 'boolean') throw new WebhookOptionsError('events(query): "oldestFirst" must be true or false')
  const { handler } = query
  if (handler !== undefined && (typeof handler !== 'string' || handler === '')) throw new WebhookOptionsError(`events(query): "handler" must be a non-empty string (a handler's key, as in its attempt log), got ${JSON.stringify(handler)}`)
  return { type, state, since: since?.getTime(), until: until?.getTime(), limit, order: query.oldestFirst === true ? 'ASC' : 'DESC', handler }
}

