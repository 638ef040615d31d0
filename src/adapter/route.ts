import { WebhookOptionsError } from '../core/errors.js'

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

/**
 * The path of a request target, the query dropped (`/webhooks/sir?x=1` →
 * `/webhooks/sir`). The absolute form (`http://host/webhooks/sir`), which an
 * HTTP/1.1 server must accept (RFC 9112, 3.2.2), is reduced to its path.
 */
export function pathnameOf (target: string | undefined): string {
  if (target === undefined) return ''
  let start = 0
  if (!target.startsWith('/')) {
    const scheme = target.indexOf('://')
    if (scheme === -1) return target
    const slash = target.indexOf('/', scheme + 3)
    if (slash === -1) return '/'
    start = slash
  }
  const query = target.indexOf('?', start)
  return query === -1 ? (start === 0 ? target : target.slice(start)) : target.slice(start, query)
}

/**
 * The path a request target routes by, or undefined when the target cannot be
 * the webhook path: one holding a `#` (a fragment is never part of an HTTP
 * request target, RFC 9112, 3.2). Not percent-decoded: `/webhooks/%73ir` is not
 * `/webhooks/sir` (docs/design.md says why).
 */
export function routePathOf (target: string | undefined): string | undefined {
  if (target === undefined || target.includes('#')) return undefined
  return pathnameOf(target)
}

/**
 * The one routing rule of every adapter: a delivery is a POST to exactly the
 * webhook path, as sent: letter case, a trailing slash and percent-encoding
 * count, the query does not, and a target with a fragment is no delivery. The
 * sender posts to the URL it was given, so a near miss is a wrong URL to fix, not
 * a delivery to guess at.
 */
export function isDeliveryRoute (method: string | undefined, target: string | undefined, path: string): boolean {
  return method === 'POST' && routePathOf(target) === path
}
