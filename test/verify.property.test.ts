import { createHmac } from 'node:crypto'
import fc from 'fast-check'
import t from 'tap'
import { sign, verify, type VerifyResult } from '../src/core/verify-node.js'

const NUM_RUNS = 500
const VERIFICATION_CODES = new Set(['MISSING_SIGNATURE', 'MALFORMED_SIGNATURE', 'SIGNATURE_MISMATCH', 'MISSING_TIMESTAMP', 'INVALID_TIMESTAMP', 'TIMESTAMP_OUT_OF_RANGE'])
// The contract's header formats, restated here rather than imported so that a
// loosened pattern in src/ is caught instead of copied.
const WELL_FORMED_SIGNATURE = /^sha256=[0-9a-f]{64}$/
const WELL_FORMED_TIMESTAMP = /^[0-9]{1,15}$/

const anySecret = fc.string({ unit: 'binary', maxLength: 100 })
const anyBody = fc.uint8Array({ maxLength: 2048 })

/**
 * A delivery signed at `timestamp` (as a header string, leading zeros allowed)
 * and received `skewMs` later or earlier, within `toleranceSeconds`.
 */
const inWindow = fc.integer({ min: 0, max: 86_400 }).chain((toleranceSeconds) => fc.record({
  toleranceSeconds: fc.constant(toleranceSeconds),
  seconds: fc.integer({ min: 0, max: 999_999_999_999 }),
  leadingZeros: fc.integer({ min: 0, max: 3 }),
  skewMs: fc.integer({ min: -toleranceSeconds * 1000, max: toleranceSeconds * 1000 })
}).map(({ toleranceSeconds, seconds, leadingZeros, skewMs }) => ({
  toleranceSeconds,
  seconds,
  timestamp: '0'.repeat(leadingZeros) + String(seconds),
  now: seconds * 1000 + skewMs
})))

/**
 * Distinct strings can be one HMAC key: keys are zero-padded to the block ("k"
 * and "k\0") and lone surrogates both encode as U+FFFD. Compare keys by what they sign.
 */
function sameHmacKey (a: string, b: string): boolean {
  return createHmac('sha256', a).update('probe').digest('hex') === createHmac('sha256', b).update('probe').digest('hex')
}

function flipBit (text: string, bit: number): string {
  const index = Math.floor(bit / 16) % text.length
  return text.slice(0, index) + String.fromCharCode(text.charCodeAt(index) ^ (1 << (bit % 16))) + text.slice(index + 1)
}

function refusal (result: VerifyResult): string {
  return result.ok ? 'ACCEPTED' : result.code
}

t.test('sign and verify round-trip for any bytes, secret and in-window timestamp', async (t) => {
  fc.assert(fc.property(anyBody, anySecret, inWindow, (rawBody, secret, delivery) => {
    const { signature } = sign({ secret, rawBody, timestamp: delivery.timestamp })
    const result = verify({ secret, rawBody, signature, timestamp: delivery.timestamp, toleranceSeconds: delivery.toleranceSeconds, now: delivery.now })
    if (!result.ok) return false
    return result.secretIndex === 0 && result.timestamp === delivery.seconds
  }), { numRuns: NUM_RUNS })
  t.pass('round-trips')
})

t.test('a correctly signed delivery outside the window is refused, in either direction', async (t) => {
  const outside = fc.record({
    toleranceSeconds: fc.integer({ min: 0, max: 86_400 }),
    seconds: fc.integer({ min: 0, max: 999_999_999_999 }),
    // One millisecond past the edge is enough: the window is not rounded to whole seconds.
    excessMs: fc.integer({ min: 1, max: 10 ** 12 }),
    ahead: fc.boolean()
  })
  fc.assert(fc.property(anyBody, anySecret, outside, (rawBody, secret, { toleranceSeconds, seconds, excessMs, ahead }) => {
    const distanceMs = toleranceSeconds * 1000 + excessMs
    const now = seconds * 1000 + (ahead ? -distanceMs : distanceMs)
    const { signature, timestamp } = sign({ secret, rawBody, timestamp: seconds })
    return refusal(verify({ secret, rawBody, signature, timestamp, toleranceSeconds, now })) === 'TIMESTAMP_OUT_OF_RANGE'
  }), { numRuns: NUM_RUNS })
  t.pass('out-of-window refused')
})

t.test('a NaN clock or tolerance fails closed instead of switching the window off', async (t) => {
  // Regression: `Math.abs(skew) > tolerance` is false for NaN, so verify accepted
  // a correctly signed delivery of any age when given toleranceSeconds: NaN
  // (Number() of an unset variable) or a clock that returned NaN.
  const broken = fc.oneof(
    fc.record({ now: fc.constant(Number.NaN), toleranceSeconds: fc.option(fc.integer({ min: 0, max: 86_400 }), { nil: undefined }) }),
    fc.record({ now: fc.integer({ min: 0, max: 4_000_000_000_000 }), toleranceSeconds: fc.constant(Number.NaN) })
  )
  fc.assert(fc.property(anyBody, anySecret, fc.integer({ min: 0, max: 999_999_999_999 }), broken, (rawBody, secret, seconds, { now, toleranceSeconds }) => {
    const { signature, timestamp } = sign({ secret, rawBody, timestamp: seconds })
    return refusal(verify({ secret, rawBody, signature, timestamp, toleranceSeconds, now })) === 'TIMESTAMP_OUT_OF_RANGE'
  }), { numRuns: NUM_RUNS })
  t.pass('NaN refused')
})

t.test('sign computes the contract\'s HMAC over the timestamp, ".", and the body bytes', async (t) => {
  fc.assert(fc.property(anyBody, anySecret, fc.integer({ min: 0, max: 999_999_999_999 }), (rawBody, secret, seconds) => {
    const expected = 'sha256=' + createHmac('sha256', Buffer.from(secret, 'utf8'))
      .update(Buffer.concat([Buffer.from(`${seconds}.`, 'ascii'), rawBody]))
      .digest('hex')
    return sign({ secret, rawBody, timestamp: seconds }).signature === expected
  }), { numRuns: NUM_RUNS })
  t.pass('matches node:crypto')
})

t.test('any single-bit flip of the body is refused as a mismatch', async (t) => {
  fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 2048 }), anySecret, inWindow, fc.nat(), (rawBody, secret, delivery, bit) => {
    const { signature } = sign({ secret, rawBody, timestamp: delivery.timestamp })
    const flipped = Uint8Array.from(rawBody)
    const position = bit % (flipped.length * 8)
    flipped[position >> 3] = (flipped[position >> 3] as number) ^ (1 << (position & 7))
    const result = verify({ secret, rawBody: flipped, signature, timestamp: delivery.timestamp, toleranceSeconds: delivery.toleranceSeconds, now: delivery.now })
    return refusal(result) === 'SIGNATURE_MISMATCH'
  }), { numRuns: NUM_RUNS })
  t.pass('body flips refused')
})

t.test('any single-bit flip of the timestamp header is refused, for the right reason', async (t) => {
  fc.assert(fc.property(anyBody, anySecret, inWindow, fc.nat(), (rawBody, secret, delivery, bit) => {
    const { signature } = sign({ secret, rawBody, timestamp: delivery.timestamp })
    const timestamp = flipBit(delivery.timestamp, bit)
    const code = refusal(verify({ secret, rawBody, signature, timestamp, toleranceSeconds: delivery.toleranceSeconds, now: delivery.now }))
    // A flip that leaves only digits names another instant: outside the window
    // or signed for a different string. Anything else is not a timestamp at all.
    return WELL_FORMED_TIMESTAMP.test(timestamp)
      ? code === 'SIGNATURE_MISMATCH' || code === 'TIMESTAMP_OUT_OF_RANGE'
      : code === 'INVALID_TIMESTAMP'
  }), { numRuns: NUM_RUNS })
  t.pass('timestamp flips refused')
})

t.test('any single-bit flip of the digest is refused as a mismatch', async (t) => {
  fc.assert(fc.property(anyBody, anySecret, inWindow, fc.integer({ min: 0, max: 255 }), (rawBody, secret, delivery, bit) => {
    const { signature } = sign({ secret, rawBody, timestamp: delivery.timestamp })
    const digest = Buffer.from(signature.slice('sha256='.length), 'hex')
    digest[bit >> 3] = (digest[bit >> 3] as number) ^ (1 << (bit & 7))
    const result = verify({ secret, rawBody, signature: 'sha256=' + digest.toString('hex'), timestamp: delivery.timestamp, toleranceSeconds: delivery.toleranceSeconds, now: delivery.now })
    return refusal(result) === 'SIGNATURE_MISMATCH'
  }), { numRuns: NUM_RUNS })
  t.pass('digest flips refused')
})

t.test('any single-bit flip of the signature header text is refused, for the right reason', async (t) => {
  fc.assert(fc.property(anyBody, anySecret, inWindow, fc.nat(), (rawBody, secret, delivery, bit) => {
    const signed = sign({ secret, rawBody, timestamp: delivery.timestamp })
    const signature = flipBit(signed.signature, bit)
    const code = refusal(verify({ secret, rawBody, signature, timestamp: delivery.timestamp, toleranceSeconds: delivery.toleranceSeconds, now: delivery.now }))
    // Flipping bit 5 of "a".."f" gives "A".."F": the same digest, refused for its case.
    return WELL_FORMED_SIGNATURE.test(signature) ? code === 'SIGNATURE_MISMATCH' : code === 'MALFORMED_SIGNATURE'
  }), { numRuns: NUM_RUNS })
  t.pass('signature text flips refused')
})

// A fixed clock that some generated timestamps fall near, so that random
// headers also reach the window check and the HMAC, not only the format checks.
const CLOCK_SECONDS = 1_778_404_320
const anyText = fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary-ascii' }))
// Near misses and well-formed values reach deeper into the checks than random text does.
const signatureHeader = fc.oneof(
  { arbitrary: anyText, weight: 3 },
  { arbitrary: fc.stringMatching(/^(sha256=|sha1=|SHA256=|)[0-9a-fA-Fg]{0,70}[\s,]?$/), weight: 3 },
  { arbitrary: fc.stringMatching(/^sha256=[0-9a-f]{64}$/), weight: 3 },
  { arbitrary: fc.constantFrom(undefined, null), weight: 1 }
)
const timestampHeader = fc.oneof(
  { arbitrary: anyText, weight: 3 },
  { arbitrary: fc.stringMatching(/^\s?[+-]?[0-9]{0,17}(\.[0-9]*)?(e[0-9]{1,2})?\s?$/), weight: 2 },
  { arbitrary: fc.integer({ min: 0, max: 2_000_000_000 }).map(String), weight: 1 },
  { arbitrary: fc.integer({ min: CLOCK_SECONDS - 400, max: CLOCK_SECONDS + 400 }).map(String), weight: 3 },
  { arbitrary: fc.constantFrom(undefined, null), weight: 1 }
)

t.test('arbitrary headers never throw and every refusal names a true fault', async (t) => {
  const secrets = fc.oneof(anySecret, fc.array(anySecret, { maxLength: 3 }))
  const bodies = fc.oneof(anyBody, fc.string({ unit: 'binary' }))
  const clock = fc.oneof(fc.constant(CLOCK_SECONDS * 1000), fc.constant(undefined), fc.integer({ min: 0, max: 4_000_000_000_000 }))
  const tolerance = fc.option(fc.integer({ min: 0, max: 1_000_000 }), { nil: undefined })
  fc.assert(fc.property(secrets, bodies, signatureHeader, timestampHeader, clock, tolerance, (secret, rawBody, signature, timestamp, now, toleranceSeconds) => {
    const result = verify({ secret, rawBody, signature, timestamp, now, toleranceSeconds })
    // A random header matching a real HMAC would be a 2^-256 event; acceptance here is a bug.
    if (result.ok) return false
    if (!VERIFICATION_CODES.has(result.code) || result.status !== 401 || result.message.length === 0) return false
    // Checked for soundness, not precedence: whichever fault is reported must be real.
    const signatureWellFormed = typeof signature === 'string' && WELL_FORMED_SIGNATURE.test(signature)
    const timestampWellFormed = typeof timestamp === 'string' && WELL_FORMED_TIMESTAMP.test(timestamp)
    switch (result.code) {
      case 'MISSING_SIGNATURE': return signature === undefined || signature === null || signature === ''
      case 'MISSING_TIMESTAMP': return timestamp === undefined || timestamp === null || timestamp === ''
      case 'MALFORMED_SIGNATURE': return typeof signature === 'string' && signature !== '' && !signatureWellFormed
      case 'INVALID_TIMESTAMP': return typeof timestamp === 'string' && timestamp !== '' && !timestampWellFormed
      default: return signatureWellFormed && timestampWellFormed
    }
  }), { numRuns: NUM_RUNS * 3 })
  t.pass('total and sound')
})

t.test('rotation: with secrets [a, b], a body signed with b verifies with secretIndex 1', async (t) => {
  const distinctKeys = fc.tuple(anySecret, anySecret, anySecret)
    .filter(([a, b, c]) => !sameHmacKey(a, b) && !sameHmacKey(a, c) && !sameHmacKey(b, c))
  fc.assert(fc.property(anyBody, distinctKeys, inWindow, (rawBody, [a, b, c], delivery) => {
    const check = (secret: string[], signer: string): VerifyResult => verify({
      secret,
      rawBody,
      signature: sign({ secret: signer, rawBody, timestamp: delivery.timestamp }).signature,
      timestamp: delivery.timestamp,
      toleranceSeconds: delivery.toleranceSeconds,
      now: delivery.now
    })
    const second = check([a, b], b)
    const first = check([a, b], a)
    const reordered = check([b, a], b)
    return second.ok && second.secretIndex === 1 &&
      first.ok && first.secretIndex === 0 &&
      reordered.ok && reordered.secretIndex === 0 &&
      refusal(check([a, b], c)) === 'SIGNATURE_MISMATCH'
  }), { numRuns: NUM_RUNS })
  t.pass('rotation holds')
})
