import { WebhookOptionsError } from './errors.js'

/** Where adapters that route for themselves listen when no `path` is given. */
export const DEFAULT_WEBHOOK_PATH = '/webhooks/sir'

/** Checks a `path` option once, at construction, so a typo fails at start-up and not per request. */
export function resolvePath (path: unknown): string {
  if (path === undefined) return DEFAULT_WEBHOOK_PATH
  if (typeof path !== 'string' || !path.startsWith('/') || path.includes('?') || path.includes('#')) {
    throw new WebhookOptionsError(`"path" must be a string starting with "/" and without a query or fragment, got ${JSON.stringify(path)}`)
  }
  return path
}

/** The path part of a request target (`/webhooks/sir?x=1` → `/webhooks/sir`); the query never decides the route. */
export function pathnameOf (target: string | undefined): string {
  if (target === undefined) return ''
  const query = target.indexOf('?')
  return query === -1 ? target : target.slice(0, query)
}
