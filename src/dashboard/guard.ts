import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { CheckedOptions } from './options.js'

/** A refusal the dashboard answers with, before any page or action runs. */
export interface Refusal {
  status: 401 | 403
  message: string
  headers?: Record<string, string>
}

/** Constant-time equality of two strings of any length: both are hashed to 32 bytes first. */
export function sameSecret (given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest()
  const b = createHash('sha256').update(expected).digest()
  return timingSafeEqual(a, b)
}

/** Who may look: `basicAuth` (401 with a challenge) then `authorize` (403). */
export async function checkAccess<Req> (options: CheckedOptions<Req>, request: Req, authorization: string | undefined): Promise<Refusal | undefined> {
  if (options.basicAuth !== undefined) {
    const expected = `${options.basicAuth.username}:${options.basicAuth.password}`
    const given = /^Basic ([A-Za-z0-9+/=]+)$/.exec(authorization ?? '')?.[1]
    // Compared whatever was given, so a missing header costs what a wrong one does.
    const matches = sameSecret(given === undefined ? '' : Buffer.from(given, 'base64').toString('utf8'), expected)
    if (given === undefined || !matches) {
      return { status: 401, message: 'sign in to see this dashboard', headers: { 'www-authenticate': 'Basic realm="sir-webhooks dashboard", charset="UTF-8"' } }
    }
  }
  if (options.authorize !== undefined) {
    let allowed: boolean
    try {
      allowed = await options.authorize(request)
    } catch {
      allowed = false
    }
    if (allowed !== true) return { status: 403, message: 'not allowed to see this dashboard' }
  }
  return undefined
}

const TOKEN_PERIOD_MS = 3_600_000

/**
 * Action tokens: an HMAC of the action's name and the hour under a secret made
 * at start and never shown. A page's token works for this hour and the next, so
 * a leaked one expires; a restart voids them all.
 */
export class ActionTokens {
  readonly #secret = randomBytes(32)
  readonly #now: () => number

  constructor (now: () => number = Date.now) {
    this.#now = now
  }

  issue (action: string): string {
    return this.#sign(action, Math.floor(this.#now() / TOKEN_PERIOD_MS))
  }

  verify (action: string, token: unknown): boolean {
    if (typeof token !== 'string' || token.length === 0) return false
    const period = Math.floor(this.#now() / TOKEN_PERIOD_MS)
    // Both compared, always: the answer does not depend on which one matched.
    const current = sameSecret(token, this.#sign(action, period))
    const previous = sameSecret(token, this.#sign(action, period - 1))
    return current || previous
  }

  #sign (action: string, period: number): string {
    return createHmac('sha256', this.#secret).update(`sir-webhooks-dashboard\n${action}\n${period}`).digest('base64url')
  }
}

/**
 * Whether a POST comes from the dashboard's own pages. Browsers send
 * `Sec-Fetch-Site` and `Origin` with every form POST; either one saying another
 * site refuses it. A client that sends neither (curl) is no browser a page can
 * drive, and still needs the token.
 */
export function crossSiteRefusal (headers: { origin?: string, secFetchSite?: string, host?: string, forwardedHost?: string }): Refusal | undefined {
  const site = headers.secFetchSite
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    return { status: 403, message: `a cross-site request (Sec-Fetch-Site: ${site}) cannot run dashboard actions` }
  }
  const origin = headers.origin
  if (origin !== undefined) {
    const parsed = URL.canParse(origin) ? new URL(origin) : undefined
    // Host as the origin's scheme would write it: "localhost:80" is http://localhost.
    const own = [headers.host, headers.forwardedHost]
      .filter((value): value is string => value !== undefined && parsed !== undefined && URL.canParse(`${parsed.protocol}//${value}`))
      .map((value) => new URL(`${parsed?.protocol ?? 'http:'}//${value}`).host)
    if (parsed === undefined || parsed.host === '' || !own.includes(parsed.host)) {
      return { status: 403, message: 'a request from another origin cannot run dashboard actions' }
    }
  }
  return undefined
}
