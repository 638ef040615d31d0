import { escapeHtml } from './escape.js'
import type { Refusal } from './guard.js'

/** One answer, as every adapter writes it. */
export interface DashboardResponse {
  status: number
  headers: Record<string, string>
  body: string | Buffer
}

// No inline script or style: a payload that slipped past escaping still could not run.
export const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // same-origin, not no-referrer: with no-referrer, browsers send "Origin: null" on a form POST and
  // the same-origin check could not tell the dashboard's own forms from a forged one.
  'referrer-policy': 'same-origin',
  'cache-control': 'no-store'
}

export function page (body: string): DashboardResponse {
  return { status: 200, headers: { ...SECURITY_HEADERS, 'content-type': 'text/html; charset=utf-8' }, body }
}

export function file (type: string, body: Buffer): DashboardResponse {
  return { status: 200, headers: { ...SECURITY_HEADERS, 'content-type': type }, body }
}

export function json (value: unknown): DashboardResponse {
  return { status: 200, headers: { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify(value) }
}

export function text (status: number, message: string, headers: Record<string, string> = {}): DashboardResponse {
  return { status, headers: { ...SECURITY_HEADERS, ...headers, 'content-type': 'text/plain; charset=utf-8' }, body: message + '\n' }
}

export function refusal ({ status, message, headers }: Refusal): DashboardResponse {
  return text(status, message, headers)
}

export function redirect (location: string): DashboardResponse {
  // 303: the browser follows with a GET, so a reload does not post the action again.
  return { status: 303, headers: { ...SECURITY_HEADERS, location, 'content-type': 'text/html; charset=utf-8' }, body: `<a href="${escapeHtml(location)}">continue</a>\n` }
}
