import { refusalMessage, refusalStatus, type VerificationErrorCode } from './errors.js'

// The checks every verifier makes before any HMAC: no crypto here, so the Node
// and the Web Crypto verifiers share them and refuse the same deliveries alike.

export const SIGNATURE_PREFIX = 'sha256='
export const DEFAULT_TOLERANCE_SECONDS = 300

// The sender writes lowercase hex; the reference receiver compares strings, so
// uppercase never verified there either and is refused as malformed here.
const SIGNATURE_PATTERN = /^sha256=[0-9a-f]{64}$/
// Digits only: no sign, fraction, exponent or whitespace. Fifteen digits keep
// the value exact as a double and are tens of millions of years of seconds.
const TIMESTAMP_PATTERN = /^[0-9]{1,15}$/

export type Secret = string | readonly string[]

/** A header as frameworks hand it over: Node types every header as possibly repeated. */
export type HeaderInput = string | readonly string[] | undefined | null

/**
 * One header value as the receiver reads it: a repeated header is joined with
 * ", " as Node joins unknown ones, so it fails the syntax checks.
 */
export function single (value: HeaderInput): string | undefined {
  if (typeof value === 'string') return value
  if (value === undefined || value === null || !Array.isArray(value) || value.length === 0) return undefined
  return value.join(', ')
}

export interface VerifyInput {
  /** The webhook signing secret (`whsec_...`), or several, newest first, during rotation. */
  secret: Secret
  /** The request body exactly as received. A string is taken as its UTF-8 bytes. */
  rawBody: Uint8Array | string
  /** The `X-SIR-Signature` header value (`req.headers['x-sir-signature']` fits as it is). */
  signature: HeaderInput
  /** The `X-SIR-Timestamp` header value. */
  timestamp: HeaderInput
  /** Accepted distance between the timestamp and now, in either direction. Default 300. */
  toleranceSeconds?: number
  /** Milliseconds since the epoch to judge the timestamp against. Default `Date.now()`. */
  now?: number
}

/** What a verifier is given once its secrets are bound. */
export type VerifyRequest = Omit<VerifyInput, 'secret'>

export type VerifyFailure = {
  ok: false
  code: VerificationErrorCode
  status: number
  message: string
  skewSeconds?: number
}

export type VerifyResult =
  | {
    ok: true
    /** Which of the secrets matched (0 is the first); never the secret itself. */
    secretIndex: number
    timestamp: number
    /** now − timestamp in seconds: positive when the delivery was signed in the past. */
    skewSeconds: number
  }
  | VerifyFailure

export interface SignInput {
  secret: string
  rawBody: Uint8Array | string
  /** Unix seconds. Default: now. */
  timestamp?: number | string
}

export interface Signature {
  /** The `X-SIR-Timestamp` header value. */
  timestamp: string
  /** The `X-SIR-Signature` header value. */
  signature: string
}

/** Headers that passed every check but the HMAC itself. */
export interface CheckedHeaders {
  ok: true
  timestampHeader: string
  seconds: number
  skewSeconds: number
  /** The 64 lowercase hex digits after `sha256=`. */
  signatureHex: string
}

export function refused (code: VerificationErrorCode, skewSeconds?: number): VerifyFailure {
  return skewSeconds === undefined
    ? { ok: false, code, status: refusalStatus[code], message: refusalMessage(code) }
    : { ok: false, code, status: refusalStatus[code], message: refusalMessage(code), skewSeconds }
}

/**
 * Presence, syntax, then the time window. The window comes before any HMAC: it
 * costs nothing and needs no secret, so replayed deliveries are turned away
 * without hashing their bodies.
 */
export function checkHeaders (input: VerifyRequest): CheckedHeaders | VerifyFailure {
  const signature = single(input.signature)
  const timestamp = single(input.timestamp)
  if (signature === undefined || signature.length === 0) return refused('MISSING_SIGNATURE')
  if (timestamp === undefined || timestamp.length === 0) return refused('MISSING_TIMESTAMP')
  if (!TIMESTAMP_PATTERN.test(timestamp)) return refused('INVALID_TIMESTAMP')
  if (!SIGNATURE_PATTERN.test(signature)) return refused('MALFORMED_SIGNATURE')

  const seconds = Number(timestamp)
  const skewSeconds = skewOf(seconds, input.now)
  const tolerance = input.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS
  // Written so that NaN fails closed: a NaN clock or tolerance (say, from
  // Number(process.env.X) left unset) must not switch the window off.
  if (!(Math.abs(skewSeconds) <= tolerance)) return refused('TIMESTAMP_OUT_OF_RANGE', skewSeconds)
  return { ok: true, timestampHeader: timestamp, seconds, skewSeconds, signatureHex: signature.slice(SIGNATURE_PREFIX.length) }
}

/** How far the receiver's clock is ahead of the timestamp, in seconds (negative: behind). */
export function skewOf (timestampSeconds: number, nowMs: number | undefined): number {
  return (nowMs ?? Date.now()) / 1000 - timestampSeconds
}

export function secretList (secret: Secret): readonly string[] {
  return typeof secret === 'string' ? [secret] : secret
}

export function currentTimestamp (timestamp: number | string | undefined): string {
  return String(timestamp ?? Math.floor(Date.now() / 1000))
}
