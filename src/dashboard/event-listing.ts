import type { EventQuery } from '../core/inbox.js'
import type { EventOutcome, OutcomeState } from '../core/outcome.js'
import type { Listing } from './pages/events.js'

const LIMIT = 100

/** A `datetime-local` value (or a date) as a moment; the browser sends no zone, so it is read as UTC. */
export function moment (value: string): Date | undefined {
  if (value === '') return undefined
  const date = new Date(/[zZ]|[+-]\d\d:\d\d$/.test(value) || !value.includes('T') ? value : value + 'Z')
  return Number.isNaN(date.getTime()) ? undefined : date
}

/** The Events page's filters, read from its query string, and the events they select (`handler`: those it failed or was deferred on). */
export async function eventListing (events: (query: EventQuery) => Promise<EventOutcome[]>, params: URLSearchParams): Promise<Listing> {
  const filters = {
    type: (params.get('type') ?? '').trim(),
    state: params.get('state') ?? '',
    since: params.get('since') ?? '',
    until: params.get('until') ?? '',
    handler: (params.get('handler') ?? '').trim()
  }
  const query: EventQuery = { limit: LIMIT }
  const problems: string[] = []
  if (filters.type !== '') query.type = filters.type
  if (['pending', 'done', 'dead'].includes(filters.state)) query.state = filters.state as OutcomeState
  else if (filters.state !== '') problems.push(`"${filters.state}" is no state: use pending, done or dead`)
  for (const name of ['since', 'until'] as const) {
    const value = moment(filters[name])
    if (value !== undefined) query[name] = value
    else if (filters[name] !== '') problems.push(`"${filters[name]}" is not a date and time`)
  }
  if (filters.handler !== '') query.handler = filters.handler
  const problem = problems.length === 0 ? {} : { problem: `Ignored: ${problems.join('; ')}.` }
  try {
    return { filters, events: await events(query), limit: LIMIT, ...problem }
  } catch (error) {
    // An inbox without an attempt log refuses `handler` (core/inbox.ts): the page says so
    // rather than answering 503 or listing every event as if each had failed.
    if (query.handler !== undefined && isOptionError(error)) return { filters, events: [], limit: LIMIT, ...problem, handlerUnsupported: true }
    throw error
  }
}

function isOptionError (error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'INVALID_OPTION'
}
