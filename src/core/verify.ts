import { createHmac, timingSafeEqual, type KeyObject } from 'node:crypto'
import { refusalMessage, refusalStatus, type VerificationErrorCode } from './errors.js'

export const SIGNATURE_PREFIX = 'sha256='
export const DEFAULT_TOLERANCE_SECONDS = 300

// The sender writes lowercase hex; the reference receiver compares strings, so
// uppercase never verified there either and is refused as malformed here.
const SIGNATURE_PATTERN = /^sha256=[0-9a-f]{64}$/
// Digits only: no sign, fraction, exponent or whitespace. Fifteen digits keep
// the value exact as a double and are tens of millions of years of seconds.
const TIMESTAMP_PATTERN = /^[0-9]{1,15}$/

export type Secret = string | readonly string[]

export interface VerifyInput {
  /** The webhook signing secret (`whsec_...`), or several, newest first, during rotation. */
  secret: Secret
  /** The request body exactly as received. A string is taken as its UTF-8 bytes. */
  rawBody: Uint8Array | string
  /** The `X-SIR-Signature` header value. */
  signature: string | undefined | null
  /** The `X-SIR-Timestamp` header value. */
  timestamp: string | undefined | null
  /** Accepted distance between the timestamp and now, in either direction. Default 300. */
  toleranceSeconds?: number
  /** Milliseconds since the epoch to judge the timestamp against. Default `Date.now()`. */
  now?: number
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
  | {
    ok: false
    code: VerificationErrorCode
    status: number
    message: string
    skewSeconds?: number
  }

function refused (code: VerificationErrorCode, skewSeconds?: number): VerifyResult {
  return skewSeconds === undefined
    ? { ok: false, code, status: refusalStatus[code], message: refusalMessage(code) }
    : { ok: false, code, status: refusalStatus[code], message: refusalMessage(code), skewSeconds }
}

/** HMAC-SHA256 of `timestamp + "." + rawBody`, over the bytes, never a decoded string. */
export function computeDigest (secret: string | KeyObject, timestamp: string, rawBody: Uint8Array | string): Buffer {
  return createHmac('sha256', secret).update(timestamp + '.').update(rawBody).digest()
}

/**
 * Checks a delivery's signature and timestamp. Pure and total: whatever the
 * headers hold, it returns a result and never throws.
 */
export function verify (input: VerifyInput): VerifyResult {
  return verifyWithKeys(typeof input.secret === 'string' ? [input.secret] : input.secret, input)
}

/**
 * `verify` with the secrets given as HMAC keys. The receiver turns its secrets into
 * `KeyObject`s once, which saves converting the key on every delivery.
 */
export function verifyWithKeys (keys: readonly (string | KeyObject)[], input: Omit<VerifyInput, 'secret'>): VerifyResult {
  const { signature, timestamp } = input
  if (typeof signature !== 'string' || signature.length === 0) return refused('MISSING_SIGNATURE')
  if (typeof timestamp !== 'string' || timestamp.length === 0) return refused('MISSING_TIMESTAMP')
  if (!TIMESTAMP_PATTERN.test(timestamp)) return refused('INVALID_TIMESTAMP')
  if (!SIGNATURE_PATTERN.test(signature)) return refused('MALFORMED_SIGNATURE')

  // The window is checked before the HMAC: it costs nothing and needs no secret,
  // so replayed deliveries are turned away without hashing their bodies.
  const seconds = Number(timestamp)
  const nowSeconds = (input.now ?? Date.now()) / 1000
  const skewSeconds = nowSeconds - seconds
  const tolerance = input.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS
  // Written so that NaN fails closed: a NaN clock or tolerance (say, from
  // Number(process.env.X) left unset) must not switch the window off.
  if (!(Math.abs(skewSeconds) <= tolerance)) return refused('TIMESTAMP_OUT_OF_RANGE', skewSeconds)

  const provided = Buffer.from(signature.slice(SIGNATURE_PREFIX.length), 'hex')
  for (let index = 0; index < keys.length; index++) {
    const expected = computeDigest(keys[index] as string | KeyObject, timestamp, input.rawBody)
    // Both are 32 bytes by construction (the pattern fixed the hex length).
    if (timingSafeEqual(expected, provided)) {
      return { ok: true, secretIndex: index, timestamp: seconds, skewSeconds }
    }
  }
  return refused('SIGNATURE_MISMATCH', skewSeconds)
}

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

/** Signs a body the way SIR Giving does, for tests and local senders. */
export function sign (input: SignInput): Signature {
  const timestamp = String(input.timestamp ?? Math.floor(Date.now() / 1000))
  const digest = computeDigest(input.secret, timestamp, input.rawBody)
  return { timestamp, signature: SIGNATURE_PREFIX + digest.toString('hex') }
}
