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

// Both digests go into buffers made once: verification is synchronous, so nothing
// else writes to them before the comparison. The computed digest is taken as a
// 'binary' (latin1) string and copied in, because `digest()` creating a Buffer each time
// measured at a third of the HMAC's whole cost for a small body.
const EXPECTED_DIGEST = Buffer.alloc(32)
const PROVIDED_DIGEST = Buffer.alloc(32)

/**
 * `verify` with the secrets given as HMAC keys. The receiver turns its secrets into
 * `KeyObject`s once, which saves converting the key on every delivery.
 */
export function verifyWithKeys (keys: readonly (string | KeyObject)[], input: VerifyRequest): VerifyResult {
  const checked = checkHeaders(input)
  if (!checked.ok) return checked
  // 64 lowercase hex digits (checkHeaders matched the pattern): exactly 32 bytes.
  PROVIDED_DIGEST.write(checked.signatureHex, 'hex')
  const signedPrefix = checked.timestampHeader + '.'
  for (let index = 0; index < keys.length; index++) {
    const digest = createHmac('sha256', keys[index] as string | KeyObject).update(signedPrefix).update(input.rawBody).digest('binary')
    EXPECTED_DIGEST.write(digest, 'binary')
    if (timingSafeEqual(EXPECTED_DIGEST, PROVIDED_DIGEST)) {
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
