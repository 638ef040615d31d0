import { refusalMessage, refusalStatus, type RefusalCode } from './errors.js'

/** The headers the receiver reads, already picked out of the request by an adapter. */
export interface Delivery {
  contentType?: string | null | undefined
  contentEncoding?: string | null | undefined
  signature?: string | null | undefined
  timestamp?: string | null | undefined
  /** The body exactly as it arrived on the wire. */
  rawBody: Uint8Array
  /**
   * Registers a callback for when the answer has been written. Adapters whose
   * framework may delay the write past the next macrotask (Fastify's async
   * hooks) give it, so handlers start only after the 2xx is on its way.
   */
  whenAnswered?: ((callback: () => void) => void) | undefined
  /**
   * Keeps the request's work alive after the response, on platforms that
   * otherwise stop it then (a Worker's `ctx.waitUntil`, Vercel's `waitUntil`).
   * Given a promise that settles once this delivery's handlers have finished.
   * Must not throw.
   */
  waitUntil?: ((handlersFinished: Promise<void>) => void) | undefined
}

export type ReceiveCode = 'ACCEPTED' | 'DUPLICATE' | RefusalCode

/** The receiver's answer; an adapter writes it as it is. Shared and frozen: do not mutate. */
export interface ReceiveResult {
  readonly status: number
  readonly code: ReceiveCode
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

const JSON_HEADERS = Object.freeze({ 'content-type': 'application/json; charset=utf-8' })

function result (status: number, code: ReceiveCode, body: unknown, headers: Record<string, string> = JSON_HEADERS): ReceiveResult {
  return Object.freeze({ status, code, headers: Object.freeze(headers), body: JSON.stringify(body) })
}

/**
 * The body limit as every layer applies it: a declared Content-Length over the
 * limit is refused before a byte is read, a streamed body the moment it passes the
 * limit, a whole body by its length. One comparison, so "exactly the limit" means
 * the same everywhere.
 */
export function overLimit (bytes: number, limit: number): boolean {
  return bytes > limit
}

export const ACCEPTED = result(200, 'ACCEPTED', { received: true })
export const DUPLICATE = result(200, 'DUPLICATE', { received: true, duplicate: true })

/** One frozen answer per refusal, built once, so the hot path allocates nothing for them. */
export function refusalResults (retryAfterSeconds: number): Readonly<Record<RefusalCode, ReceiveResult>> {
  const answers = {} as Record<RefusalCode, ReceiveResult>
  for (const code of Object.keys(refusalStatus) as RefusalCode[]) {
    const status = refusalStatus[code]
    const headers = status === 503 ? { ...JSON_HEADERS, 'retry-after': String(retryAfterSeconds) } : JSON_HEADERS
    answers[code] = result(status, code, { error: { code, message: refusalMessage(code) } }, headers)
  }
  return Object.freeze(answers)
}

/** `application/json`, with parameters such as `charset` allowed, in any letter case. */
export function isJsonContentType (contentType: string | null | undefined): boolean {
  if (typeof contentType !== 'string') return false
  if (contentType === 'application/json') return true
  const semicolon = contentType.indexOf(';')
  const mediaType = semicolon === -1 ? contentType : contentType.slice(0, semicolon)
  return mediaType.trim().toLowerCase() === 'application/json'
}

/** The receiver verifies the bytes as sent; an encoded body would have to be decoded first. */
export function isEncoded (contentEncoding: string | null | undefined): boolean {
  if (typeof contentEncoding !== 'string' || contentEncoding.length === 0) return false
  return contentEncoding.trim().toLowerCase() !== 'identity'
}

type HeaderValue = string | readonly string[] | undefined | null

function first (value: HeaderValue): string | undefined {
  if (value === undefined || value === null) return undefined
  return typeof value === 'string' ? value : value[0]
}

/**
 * Picks the receiver's headers out of Node's lower-cased `IncomingHttpHeaders`.
 * `rawHeaders`, where given, is the request's list of header lines: Node keeps
 * only the first of two `Content-Type` lines, where a fetch runtime's `Headers`
 * joins them ("application/json, text/plain", refused with 415). With it, the
 * Node adapters see the joined value too, and every adapter answers alike.
 */
export function deliveryFromNodeHeaders (headers: Record<string, HeaderValue>, rawBody: Uint8Array, rawHeaders?: readonly string[]): Delivery {
  return {
    contentType: rawHeaders === undefined ? first(headers['content-type']) : contentTypeLines(rawHeaders, first(headers['content-type'])),
    contentEncoding: first(headers['content-encoding']),
    signature: first(headers['x-sir-signature']),
    timestamp: first(headers['x-sir-timestamp']),
    rawBody
  }
}

/**
 * The Content-Type as a fetch runtime would read it: `single` (Node's value) when
 * the request has one such line, all of them joined with ", " when it has more.
 * A few length checks per header line; a lower-casing only for 12-letter names.
 */
function contentTypeLines (rawHeaders: readonly string[], single: string | undefined): string | undefined {
  let lines: string[] | undefined
  let count = 0
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string
    if (name.length !== 12 || name.toLowerCase() !== 'content-type') continue
    count += 1
    ;(lines ??= []).push(rawHeaders[i + 1] as string)
  }
  return count > 1 ? (lines as string[]).join(', ') : single
}

/** Picks the receiver's headers out of a Web `Headers` (fetch runtimes); `get` is case-insensitive. */
export function deliveryFromWebHeaders (headers: { get (name: string): string | null }, rawBody: Uint8Array): Delivery {
  return {
    contentType: headers.get('content-type'),
    contentEncoding: headers.get('content-encoding'),
    signature: headers.get('x-sir-signature'),
    timestamp: headers.get('x-sir-timestamp'),
    rawBody
  }
}
