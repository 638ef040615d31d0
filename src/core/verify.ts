import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto'
import {
  SIGNATURE_PREFIX,
  checkHeaders,
  currentTimestamp,
  refused,
  secretList,
  type SignInput,
  type Signature,
  type VerifyInput,
  type VerifyRequest,
  type VerifyResult
} from './signature-checks.js'

// The Node verifier: synchronous, on node:crypto. The Web Crypto one, for
// runtimes without node: modules, is verify-web.ts; both share signature-checks.ts.

export { SIGNATURE_PREFIX, DEFAULT_TOLERANCE_SECONDS } from './signature-checks.js'
export type { Secret, SignInput, Signature, VerifyInput, VerifyRequest, VerifyResult } from './signature-checks.js'

/** HMAC-SHA256 of `timestamp + "." + rawBody`, over the bytes, never a decoded string. */
export function computeDigest (secret: string | KeyObject, timestamp: string, rawBody: Uint8Array | string): Buffer {
  return createHmac('sha256', secret).update(timestamp + '.').update(rawBody).digest()
}

/**
 * Checks a delivery's signature and timestamp. Pure and total: whatever the
 * headers hold, it returns a result and never throws.
 */
export function verify (input: VerifyInput): VerifyResult {
  return verifyWithKeys(secretList(input.secret), input)
}

const PROVIDED_DIGEST = Buffer.alloc(32)

/**
 * `verify` with the secrets given as HMAC keys. The receiver turns its secrets into
 * `KeyObject`s once, which saves converting the key on every delivery.
 */
export function verifyWithKeys (keys: readonly (string | KeyObject)[], input: VerifyRequest): VerifyResult {
  const checked = checkHeaders(input)
  if (!checked.ok) return checked
  // Decoded into one reused buffer, not a new one per delivery: verification is
  // synchronous, so nothing else can write to it before the comparison below.
  const provided = PROVIDED_DIGEST
  provided.write(checked.signatureHex, 'hex')
  for (let index = 0; index < keys.length; index++) {
    const expected = computeDigest(keys[index] as string | KeyObject, checked.timestampHeader, input.rawBody)
    // Both are 32 bytes by construction (the pattern fixed the hex length).
    if (timingSafeEqual(expected, provided)) {
      return { ok: true, secretIndex: index, timestamp: checked.seconds, skewSeconds: checked.skewSeconds }
    }
  }
  return refused('SIGNATURE_MISMATCH', checked.skewSeconds)
}

/** The receiver's verifier on Node: keys built once, checked synchronously. */
export function createNodeVerifier (secrets: readonly string[]): (input: VerifyRequest) => VerifyResult {
  const keys = secrets.map((secret) => createSecretKey(Buffer.from(secret, 'utf8')))
  return (input) => verifyWithKeys(keys, input)
}

/** Signs a body the way SIR Giving does, for tests and local senders. */
export function sign (input: SignInput): Signature {
  const timestamp = currentTimestamp(input.timestamp)
  const digest = computeDigest(input.secret, timestamp, input.rawBody)
  return { timestamp, signature: SIGNATURE_PREFIX + digest.toString('hex') }
}
