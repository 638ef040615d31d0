import type { IncomingHttpHeaders } from 'node:http'
import type { DashboardRequest } from './app.js'

function first (value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

/** The few headers the dashboard reads, from a Node request's (Fastify's are the same object). */
export function dashboardHeaders (headers: IncomingHttpHeaders): DashboardRequest<unknown>['headers'] {
  const picked: DashboardRequest<unknown>['headers'] = {}
  const authorization = first(headers.authorization)
  const origin = first(headers.origin)
  const secFetchSite = first(headers['sec-fetch-site'])
  const host = first(headers.host)
  const forwardedHost = first(headers['x-forwarded-host'])
  if (authorization !== undefined) picked.authorization = authorization
  if (origin !== undefined) picked.origin = origin
  if (secFetchSite !== undefined) picked.secFetchSite = secFetchSite
  if (host !== undefined) picked.host = host
  if (forwardedHost !== undefined) picked.forwardedHost = forwardedHost
  return picked
}

/** A form body, when the request says it is one; anything else is no form (and no token). */
export function formFrom (contentType: string | undefined, body: unknown): URLSearchParams | undefined {
  if (!/^application\/x-www-form-urlencoded\b/i.test(contentType ?? '')) return undefined
  if (typeof body === 'string') return new URLSearchParams(body)
  if (Buffer.isBuffer(body)) return new URLSearchParams(body.toString('utf8'))
  // Express's urlencoded() may have parsed it already.
  if (body !== null && typeof body === 'object') {
    return new URLSearchParams(Object.entries(body).filter((entry): entry is [string, string] => typeof entry[1] === 'string'))
  }
  return undefined
}

/** Splits a request target into the path below `prefix` and the query; undefined when it is not below it. */
export function pathBelow (target: string, prefix: string): { path: string, query: URLSearchParams } | undefined {
  const url = new URL(target, 'http://dashboard.invalid')
  const base = prefix.replace(/\/+$/, '')
  if (url.pathname !== base && !url.pathname.startsWith(base + '/')) return undefined
  return { path: url.pathname.slice(base.length) || '/', query: url.searchParams }
}
