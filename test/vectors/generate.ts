/**
 * Writes the known-answer vectors `sir-v1.json` (signature and timestamp checks)
 * and `envelope-v1.json` (the event envelope) beside this file.
 *
 *   npx ts-node-esm test/vectors/generate.ts
 *
 * Every signature here is computed with node:crypto directly and every expected
 * answer is written by hand from the contract, never by calling src/: the vectors
 * exist to check the implementation, so they must not be derived from it.
 * The output is deterministic (fixed secrets, clock and bodies), so running the
 * script twice gives identical files; `test/vectors.test.ts` fails when the
 * committed JSON and this script disagree.
 */
import { createHash, createHmac } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export type SignatureExpectation =
  | { valid: true, secretIndex: number }
  | { valid: false, reason: SignatureReason, status: 401 }

export type SignatureReason =
  | 'MISSING_SIGNATURE'
  | 'MALFORMED_SIGNATURE'
  | 'SIGNATURE_MISMATCH'
  | 'MISSING_TIMESTAMP'
  | 'INVALID_TIMESTAMP'
  | 'TIMESTAMP_OUT_OF_RANGE'

export interface SignatureVector {
  name: string
  comment: string
  secret?: string
  secrets?: string[]
  timestamp: string | null
  signature: string | null
  bodyBase64: string
  nowSeconds: number
  toleranceSeconds: number
  expected: SignatureExpectation
}

export type EnvelopeExpectation =
  | { valid: true, id: string, type: string }
  | { valid: false, reason: 'INVALID_JSON' | 'INVALID_ENVELOPE', status: 400 }

export interface EnvelopeVector {
  name: string
  comment: string
  bodyBase64: string
  expected: EnvelopeExpectation
}

// 2026-05-10T09:12:00Z, the `createdAt` of the contract's example envelope.
const NOW = 1778404320
const TOLERANCE = 300
// Deliveries arrive a few seconds after they are signed; a timestamp equal to
// the clock would hide receivers that get the sign of the skew wrong.
const SIGNED_AT = NOW - 7

const SECRET = 'whsec_5mJ2bVqkR8xT0yLwZ3nC7dHfA9sEuG4p'
const SECRET_OLD = 'whsec_Kp3QzN8vW1rYt6XmB0cLd5HgJ2sFa7Ue'
const SECRET_OTHER = 'whsec_Zt9LpX4cV7bN2mQ8wR1yK6hD3fG0sJaE'
// Not ASCII: the key is the secret's UTF-8 bytes, not Latin-1 or UTF-16.
const SECRET_UNICODE = 'whsec_clé-ünïcødé-秘密-🔑'
// Longer than SHA-256's 64-byte block, so HMAC hashes the key first.
const SECRET_LONG = 'whsec_' + 'L0ngS3cret'.repeat(10)

const bytes = (text: string): Buffer => Buffer.from(text, 'utf8')

const SMALL_BODY = bytes('{"id":"evt_abc123","type":"action.completed","createdAt":"2026-05-10T09:12:00Z","data":{"actionId":"act_1","tokensDistributed":50}}')

function hmacHex (key: string | Buffer, message: Buffer): string {
  return createHmac('sha256', key).update(message).digest('hex')
}

/** The contract: "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)). */
function signatureOf (secret: string, timestamp: string, body: Buffer): string {
  return 'sha256=' + hmacHex(secret, Buffer.concat([bytes(timestamp), bytes('.'), body]))
}

const valid = (secretIndex = 0): SignatureExpectation => ({ valid: true, secretIndex })
const refused = (reason: SignatureReason): SignatureExpectation => ({ valid: false, reason, status: 401 })

interface SignatureCase {
  name: string
  comment: string
  body?: Buffer
  secret?: string
  secrets?: string[]
  timestamp?: string | null
  /** The header as sent; default: a correct signature with `secret` over `timestamp` and `body`. */
  signature?: string | null
  nowSeconds?: number
  toleranceSeconds?: number
  expected: SignatureExpectation
}

function signatureVector (c: SignatureCase): SignatureVector {
  const body = c.body ?? SMALL_BODY
  const timestamp = c.timestamp === undefined ? String(SIGNED_AT) : c.timestamp
  const signature = c.signature === undefined ? signatureOf(SECRET, timestamp ?? '', body) : c.signature
  const secrets = c.secrets === undefined ? { secret: c.secret ?? SECRET } : { secrets: c.secrets }
  return {
    name: c.name,
    comment: c.comment,
    ...secrets,
    timestamp,
    signature,
    bodyBase64: body.toString('base64'),
    nowSeconds: c.nowSeconds ?? NOW,
    toleranceSeconds: c.toleranceSeconds ?? TOLERANCE,
    expected: c.expected
  }
}

/** A body just over 64 KiB: longer than one socket read, so hashing only the first chunk fails. */
function largeBody (): Buffer {
  const items = Array.from({ length: 900 }, (_, index) => ({
    actionId: `act_${String(index).padStart(5, '0')}`,
    userRef: createHash('sha256').update(`user-${index}`).digest('hex').slice(0, 24),
    tokensDistributed: (index * 37) % 500
  }))
  return bytes(JSON.stringify({ id: 'evt_large', type: 'action.completed', data: { items } }))
}

export function buildSignatureVectors (): SignatureVector[] {
  const ts = String(SIGNED_AT)
  const sign = (timestamp: string, body: Buffer = SMALL_BODY, secret: string = SECRET): string => signatureOf(secret, timestamp, body)
  const correct = sign(ts)
  const correctHex = correct.slice('sha256='.length)
  const pretty = bytes('{\n  "id": "evt_pretty",\n  "type": "action.completed",\n  "data": { "tokensDistributed": 50 }\n}\n')
  const reserialized = bytes(JSON.stringify(JSON.parse(pretty.toString('utf8'))))
  const keyOrdered = bytes('{"type":"action.completed","id":"evt_abc123","createdAt":"2026-05-10T09:12:00Z","data":{"actionId":"act_1","tokensDistributed":50}}')
  const unicode = bytes('{"id":"evt_ünï","type":"campaign.activated","data":{"name":"Été 2026 — 募捐 🎁","rtl":"مرحبا"}}')
  const invalidUtf8 = Buffer.concat([
    bytes('{"id":"evt_bytes","type":"action.failed","data":{"note":"'),
    // A truncated sequence, a byte never valid in UTF-8, and a UTF-8-encoded surrogate.
    Buffer.from([0xc3, 0x28, 0xff, 0xed, 0xa0, 0x80]),
    bytes('"}}')
  ])
  const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), SMALL_BODY])
  const crlf = bytes('{\r\n"id":"evt_crlf",\r\n"type":"action.completed"\r\n}\r\n')
  const withNul = bytes('{"id":"evt_nul","type":"action.completed","data":{"s":"a\u0000b"}}')
  const large = largeBody()

  const cases: SignatureCase[] = [
    // Valid deliveries: the signature covers exactly the bytes that arrived.
    { name: 'valid/small', comment: 'The contract\'s example envelope, signed 7 seconds before now.', expected: valid() },
    { name: 'valid/large', comment: `A ${large.length}-byte body, longer than one 64 KiB read.`, body: large, expected: valid() },
    { name: 'valid/unicode', comment: 'Multi-byte UTF-8 in the body is signed as its bytes.', body: unicode, expected: valid() },
    {
      name: 'valid/invalid-utf8',
      comment: 'The body is not valid UTF-8; the signature is over the raw bytes, so it verifies (parsing it fails later, separately).',
      body: invalidUtf8,
      expected: valid()
    },
    { name: 'valid/bom-prefixed', comment: 'A UTF-8 byte order mark is part of the signed bytes; do not strip it before hashing.', body: bom, expected: valid() },
    { name: 'valid/empty-object', comment: 'The body is "{}".', body: bytes('{}'), expected: valid() },
    { name: 'valid/empty-body', comment: 'A zero-length body: the signed payload is the timestamp and "." alone.', body: Buffer.alloc(0), expected: valid() },
    { name: 'valid/pretty-printed', comment: 'Whitespace and the final newline are signed as sent.', body: pretty, expected: valid() },
    { name: 'valid/crlf', comment: 'CRLF line endings are signed as sent; do not normalise newlines.', body: crlf, expected: valid() },
    { name: 'valid/nul-byte', comment: 'A JSON-escaped NUL and raw bytes pass through the HMAC unchanged.', body: withNul, expected: valid() },
    { name: 'valid/unicode-secret', comment: 'A non-ASCII secret: the HMAC key is its UTF-8 bytes.', secret: SECRET_UNICODE, signature: sign(ts, SMALL_BODY, SECRET_UNICODE), expected: valid() },
    { name: 'valid/long-secret', comment: 'A secret longer than the 64-byte HMAC block.', secret: SECRET_LONG, signature: sign(ts, SMALL_BODY, SECRET_LONG), expected: valid() },
    {
      name: 'valid/timestamp-leading-zeros',
      comment: 'Leading zeros are digits; the HMAC covers the header exactly as sent, zeros included.',
      timestamp: '000' + ts,
      expected: valid()
    },

    // Key rotation: secrets are listed newest first; secretIndex names the one that matched.
    { name: 'rotation/first-secret', comment: 'Signed with the first of two secrets.', secrets: [SECRET, SECRET_OLD], expected: valid(0) },
    { name: 'rotation/second-secret', comment: 'Signed with the second (older) of two secrets.', secrets: [SECRET_OLD, SECRET], expected: valid(1) },
    { name: 'rotation/third-secret', comment: 'Signed with the last of three secrets.', secrets: [SECRET_OTHER, SECRET_OLD, SECRET], expected: valid(2) },
    { name: 'rotation/single-element-list', comment: 'A list of one secret behaves as that secret.', secrets: [SECRET], expected: valid(0) },
    { name: 'rotation/no-secret-matches', comment: 'Signed with a secret that is in neither slot.', secrets: [SECRET_OLD, SECRET_OTHER], expected: refused('SIGNATURE_MISMATCH') },

    // The window: |now − timestamp| ≤ tolerance, both ends inclusive.
    { name: 'window/past-edge', comment: 'Signed exactly 300 seconds before now.', timestamp: String(NOW - 300), expected: valid() },
    { name: 'window/future-edge', comment: 'Signed exactly 300 seconds after now (the receiver\'s clock is behind).', timestamp: String(NOW + 300), expected: valid() },
    { name: 'window/past-beyond', comment: 'Signed 301 seconds before now: a replay or a very late delivery.', timestamp: String(NOW - 301), expected: refused('TIMESTAMP_OUT_OF_RANGE') },
    { name: 'window/future-beyond', comment: 'Signed 301 seconds after now.', timestamp: String(NOW + 301), expected: refused('TIMESTAMP_OUT_OF_RANGE') },
    { name: 'window/same-second', comment: 'Timestamp equal to now.', timestamp: String(NOW), expected: valid() },
    { name: 'window/custom-tolerance-edge', comment: 'toleranceSeconds 10, signed exactly 10 seconds ago.', timestamp: String(NOW - 10), toleranceSeconds: 10, expected: valid() },
    { name: 'window/custom-tolerance-beyond', comment: 'toleranceSeconds 10, signed 11 seconds ago.', timestamp: String(NOW - 11), toleranceSeconds: 10, expected: refused('TIMESTAMP_OUT_OF_RANGE') },
    {
      name: 'window/past-beyond-by-quarter-second',
      comment: 'The receiver\'s clock has a fraction: signed 300.25 seconds before now. Do not round the clock to whole seconds.',
      timestamp: String(NOW - 300),
      nowSeconds: NOW + 0.25,
      expected: refused('TIMESTAMP_OUT_OF_RANGE')
    },
    {
      name: 'window/future-within-by-quarter-second',
      comment: 'Signed 299.75 seconds after a clock with a fraction.',
      timestamp: String(NOW + 300),
      nowSeconds: NOW + 0.25,
      expected: valid()
    },
    { name: 'window/milliseconds', comment: 'A timestamp in milliseconds is well formed but about 56,000 years ahead.', timestamp: String(NOW * 1000), expected: refused('TIMESTAMP_OUT_OF_RANGE') },
    { name: 'window/zero', comment: 'The epoch itself.', timestamp: '0', expected: refused('TIMESTAMP_OUT_OF_RANGE') },
    { name: 'window/fifteen-digits', comment: 'The longest accepted timestamp, far in the future.', timestamp: '999999999999999', expected: refused('TIMESTAMP_OUT_OF_RANGE') },

    // Missing headers. A missing header and an empty one are the same refusal.
    { name: 'signature/missing', comment: 'No X-SIR-Signature header.', signature: null, expected: refused('MISSING_SIGNATURE') },
    { name: 'signature/empty', comment: 'An empty X-SIR-Signature header.', signature: '', expected: refused('MISSING_SIGNATURE') },
    {
      name: 'timestamp/missing',
      comment: 'No X-SIR-Timestamp header. The signature is over "" + "." + body, which the reference receiver would have computed; it must still be refused.',
      timestamp: null,
      expected: refused('MISSING_TIMESTAMP')
    },
    { name: 'timestamp/empty', comment: 'An empty X-SIR-Timestamp header, signed as "" + "." + body.', timestamp: '', expected: refused('MISSING_TIMESTAMP') },

    // Timestamps that are not 1 to 15 ASCII digits. Each is signed over the header
    // as sent and names an in-window instant, so its format is its only fault.
    { name: 'timestamp/plus-sign', comment: 'A leading "+".', timestamp: '+' + ts, expected: refused('INVALID_TIMESTAMP') },
    { name: 'timestamp/fraction', comment: 'Fractional seconds.', timestamp: ts + '.5', expected: refused('INVALID_TIMESTAMP') },
    { name: 'timestamp/trailing-dot', comment: 'A trailing decimal point.', timestamp: ts + '.', expected: refused('INVALID_TIMESTAMP') },
    { name: 'timestamp/exponent', comment: 'Scientific notation for the same instant.', timestamp: (SIGNED_AT / 1e9).toString() + 'e9', expected: refused('INVALID_TIMESTAMP') },
    { name: 'timestamp/leading-space', comment: 'Whitespace is not trimmed inside verification.', timestamp: ' ' + ts, expected: refused('INVALID_TIMESTAMP') },
    { name: 'timestamp/trailing-space', comment: 'A trailing space.', timestamp: ts + ' ', expected: refused('INVALID_TIMESTAMP') },
    { name: 'timestamp/trailing-newline', comment: 'A regex with "$" that matches before a final newline (Python, PHP, Ruby) accepts this; it must be refused.', timestamp: ts + '\n', expected: refused('INVALID_TIMESTAMP') },
    { name: 'timestamp/hex', comment: 'Hexadecimal for the same instant.', timestamp: '0x' + SIGNED_AT.toString(16), expected: refused('INVALID_TIMESTAMP') },
    { name: 'timestamp/underscores', comment: 'Digit separators, which some integer parsers accept.', timestamp: ts.replace(/(\d)(?=(\d{3})+$)/g, '$1_'), expected: refused('INVALID_TIMESTAMP') },
    { name: 'timestamp/fullwidth-digits', comment: 'Unicode digits (U+FF10..U+FF19), which some integer parsers accept.', timestamp: [...ts].map((digit) => String.fromCodePoint(0xff10 + Number(digit))).join(''), expected: refused('INVALID_TIMESTAMP') },
    { name: 'timestamp/too-many-digits', comment: 'Sixteen digits naming an in-window instant: refused for its length alone.', timestamp: ts.padStart(16, '0'), expected: refused('INVALID_TIMESTAMP') },
    { name: 'timestamp/iso-8601', comment: 'A date string instead of Unix seconds.', timestamp: '2026-05-10T09:11:53Z', expected: refused('INVALID_TIMESTAMP') },

    // Signature headers that are not "sha256=" and 64 lowercase hex digits.
    { name: 'signature/no-prefix', comment: 'The right digest without "sha256=".', signature: correctHex, expected: refused('MALFORMED_SIGNATURE') },
    { name: 'signature/uppercase-hex', comment: 'The right digest in uppercase hex.', signature: 'sha256=' + correctHex.toUpperCase(), expected: refused('MALFORMED_SIGNATURE') },
    { name: 'signature/uppercase-prefix', comment: 'The right digest with "SHA256=".', signature: 'SHA256=' + correctHex, expected: refused('MALFORMED_SIGNATURE') },
    { name: 'signature/too-short', comment: 'The right digest missing its last hex digit.', signature: correct.slice(0, -1), expected: refused('MALFORMED_SIGNATURE') },
    { name: 'signature/too-long', comment: 'The right digest with one extra hex digit.', signature: correct + '0', expected: refused('MALFORMED_SIGNATURE') },
    { name: 'signature/truncated-half', comment: 'The first 16 bytes of the right digest.', signature: correct.slice(0, 'sha256='.length + 32), expected: refused('MALFORMED_SIGNATURE') },
    { name: 'signature/prefix-only', comment: '"sha256=" and nothing after it.', signature: 'sha256=', expected: refused('MALFORMED_SIGNATURE') },
    { name: 'signature/non-hex', comment: 'The right length with a "g" in place of the last digit.', signature: correct.slice(0, -1) + 'g', expected: refused('MALFORMED_SIGNATURE') },
    {
      name: 'signature/sha1',
      comment: 'HMAC-SHA1 of the right payload under a "sha1=" prefix.',
      signature: 'sha1=' + createHmac('sha1', SECRET).update(Buffer.concat([bytes(ts), bytes('.'), SMALL_BODY])).digest('hex'),
      expected: refused('MALFORMED_SIGNATURE')
    },
    { name: 'signature/base64-digest', comment: 'The right digest in base64 instead of hex.', signature: 'sha256=' + Buffer.from(correctHex, 'hex').toString('base64'), expected: refused('MALFORMED_SIGNATURE') },
    { name: 'signature/two-joined-comma', comment: 'The right signature and another joined by ", ", as HTTP combines a repeated header (Node does this for X-SIR-Signature).', signature: correct + ', ' + sign(ts, SMALL_BODY, SECRET_OLD), expected: refused('MALFORMED_SIGNATURE') },
    { name: 'signature/two-joined-space', comment: 'Two signatures separated by a space.', signature: sign(ts, SMALL_BODY, SECRET_OLD) + ' ' + correct, expected: refused('MALFORMED_SIGNATURE') },
    { name: 'signature/trailing-newline', comment: 'The right signature and "\\n".', signature: correct + '\n', expected: refused('MALFORMED_SIGNATURE') },

    // Well-formed signatures over something other than timestamp + "." + body, with the right secret.
    { name: 'mismatch/body-only', comment: 'HMAC of the body alone, without the timestamp.', signature: 'sha256=' + hmacHex(SECRET, SMALL_BODY), expected: refused('SIGNATURE_MISMATCH') },
    { name: 'mismatch/no-separator', comment: 'HMAC of timestamp + body with no ".".', signature: 'sha256=' + hmacHex(SECRET, Buffer.concat([bytes(ts), SMALL_BODY])), expected: refused('SIGNATURE_MISMATCH') },
    { name: 'mismatch/body-then-timestamp', comment: 'HMAC of body + "." + timestamp.', signature: 'sha256=' + hmacHex(SECRET, Buffer.concat([SMALL_BODY, bytes('.'), bytes(ts)])), expected: refused('SIGNATURE_MISMATCH') },
    { name: 'mismatch/other-timestamp', comment: 'Signed for the second before the timestamp sent.', signature: sign(String(SIGNED_AT - 1)), expected: refused('SIGNATURE_MISMATCH') },
    { name: 'mismatch/plain-sha256', comment: 'SHA-256 of the payload with no key.', signature: 'sha256=' + createHash('sha256').update(Buffer.concat([bytes(ts), bytes('.'), SMALL_BODY])).digest('hex'), expected: refused('SIGNATURE_MISMATCH') },
    { name: 'mismatch/wrong-secret', comment: 'Signed with another secret.', signature: sign(ts, SMALL_BODY, SECRET_OTHER), expected: refused('SIGNATURE_MISMATCH') },
    { name: 'mismatch/secret-with-newline', comment: 'Signed with the secret plus a trailing newline, as copied from a file or an environment variable.', signature: sign(ts, SMALL_BODY, SECRET + '\n'), expected: refused('SIGNATURE_MISMATCH') },
    { name: 'mismatch/secret-with-space', comment: 'Signed with the secret plus a leading space.', signature: sign(ts, SMALL_BODY, ' ' + SECRET), expected: refused('SIGNATURE_MISMATCH') },
    {
      name: 'mismatch/secret-without-prefix',
      comment: 'Signed with the secret minus "whsec_": the whole string, prefix included, is the key.',
      signature: sign(ts, SMALL_BODY, SECRET.slice('whsec_'.length)),
      expected: refused('SIGNATURE_MISMATCH')
    },
    {
      name: 'mismatch/secret-base64-decoded',
      comment: 'Keyed with the base64 decoding of the part after "whsec_" (the Standard Webhooks convention), which this contract does not use.',
      signature: 'sha256=' + hmacHex(Buffer.from(SECRET.slice('whsec_'.length), 'base64'), Buffer.concat([bytes(ts), bytes('.'), SMALL_BODY])),
      expected: refused('SIGNATURE_MISMATCH')
    },
    {
      name: 'mismatch/reserialized-body',
      comment: 'Signed over a pretty-printed body; the body presented is JSON.stringify(JSON.parse(it)). Verify the bytes received, never a re-serialisation.',
      body: reserialized,
      signature: sign(ts, pretty),
      expected: refused('SIGNATURE_MISMATCH')
    },
    {
      name: 'mismatch/key-order',
      comment: 'The same members in another order than the one signed.',
      body: keyOrdered,
      expected: refused('SIGNATURE_MISMATCH'),
      signature: sign(ts, SMALL_BODY)
    },
    { name: 'mismatch/trailing-newline-added', comment: 'The signed body with "\\n" appended.', body: Buffer.concat([SMALL_BODY, bytes('\n')]), signature: correct, expected: refused('SIGNATURE_MISMATCH') },
    {
      name: 'mismatch/bom-stripped-before-signing',
      comment: 'The body carries a BOM; the signature was computed over it without the BOM. A receiver that decodes text before hashing would accept this.',
      body: bom,
      signature: correct,
      expected: refused('SIGNATURE_MISMATCH')
    },
    {
      name: 'mismatch/lossy-utf8-decoding',
      comment: 'The body is not valid UTF-8; the signature is over its lossy decoding (U+FFFD for each bad sequence), as the contract\'s Express example, which hashes rawBody.toString(), would compute. The signed bytes are the raw ones.',
      body: invalidUtf8,
      signature: sign(ts, bytes(invalidUtf8.toString('utf8'))),
      expected: refused('SIGNATURE_MISMATCH')
    },
    { name: 'mismatch/one-byte-changed', comment: 'tokensDistributed 50 became 51 after signing.', body: bytes(SMALL_BODY.toString('utf8').replace('"tokensDistributed":50', '"tokensDistributed":51')), signature: correct, expected: refused('SIGNATURE_MISMATCH') }
  ]
  return cases.map(signatureVector)
}

export function buildSignatureDocument (): object {
  return {
    version: 1,
    description: {
      summary: 'Known-answer vectors for verifying SIR Giving webhook deliveries (X-SIR-Signature, X-SIR-Timestamp). Generated by test/vectors/generate.ts in the sir-webhooks repository.',
      signedPayload: 'The X-SIR-Timestamp header value exactly as received (its UTF-8 bytes), then one "." (0x2E), then the raw request body bytes exactly as received: no decoding, BOM stripping, newline normalisation or JSON re-serialisation.',
      signature: 'X-SIR-Signature is "sha256=" followed by the lowercase hex of HMAC-SHA256(key, signedPayload), 71 characters in all. The key is the UTF-8 bytes of the secret string exactly as issued, "whsec_" prefix included, not base64-decoded. Compare in constant time.',
      signatureFormat: 'A header that is not exactly "sha256=" followed by 64 characters from 0-9a-f is MALFORMED_SIGNATURE: no uppercase, other prefixes, surrounding whitespace or several signatures.',
      timestamp: 'X-SIR-Timestamp is Unix time in seconds written as 1 to 15 ASCII digits (0-9); leading zeros are allowed and stay in the signed payload. Anything else (sign, fraction, exponent, whitespace, hex, separators, non-ASCII digits, more digits) is INVALID_TIMESTAMP.',
      window: 'Valid only if |nowSeconds - timestamp| <= toleranceSeconds: both ends are inclusive, and the check is symmetric (a timestamp ahead of the receiver\'s clock is judged the same as one behind it).',
      rotation: 'A vector with "secrets" lists several secrets, newest first; the delivery is valid if any matches, and secretIndex is the zero-based index of the first that does.',
      missing: 'A header given as null was absent. An absent or empty X-SIR-Signature is MISSING_SIGNATURE; an absent or empty X-SIR-Timestamp is MISSING_TIMESTAMP.',
      oneFaultPerVector: 'Every refused vector has exactly one fault: its other header is well formed and, where it can be, its signature is correct for the timestamp and body sent. The expected reason therefore does not depend on the order in which a verifier makes its checks.',
      status: 'Every refusal is answered with HTTP 401.',
      fields: {
        name: 'Unique, stable identifier, grouped by prefix.',
        comment: 'What the vector exercises.',
        secret: 'The one signing secret (absent when "secrets" is given).',
        secrets: 'Secrets in rotation, newest first (absent when "secret" is given).',
        timestamp: 'The X-SIR-Timestamp header value, or null when absent.',
        signature: 'The X-SIR-Signature header value, or null when absent.',
        bodyBase64: 'The raw request body, base64 (RFC 4648, with padding).',
        nowSeconds: 'The receiver\'s clock, in Unix seconds; it may carry a fraction (to the millisecond), which is not rounded away.',
        toleranceSeconds: 'The accepted distance between timestamp and now.',
        expected: '{ "valid": true, "secretIndex": n } or { "valid": false, "reason": CODE, "status": 401 }.'
      }
    },
    vectors: buildSignatureVectors()
  }
}

interface EnvelopeCase {
  name: string
  comment: string
  body: string | Buffer
  expected: EnvelopeExpectation
}

const accepted = (id: string, type: string): EnvelopeExpectation => ({ valid: true, id, type })
const notJson: EnvelopeExpectation = { valid: false, reason: 'INVALID_JSON', status: 400 }
const notEnvelope: EnvelopeExpectation = { valid: false, reason: 'INVALID_ENVELOPE', status: 400 }

export function buildEnvelopeVectors (): EnvelopeVector[] {
  const minimal = '{"id":"evt_1","type":"action.completed","createdAt":"2026-05-10T09:12:00Z","data":{}}'
  // The documented members, with one of them replaced (or removed, for undefined).
  const withMember = (name: string, json: string | undefined): string => {
    const members: Record<string, string> = { id: '"evt_1"', type: '"action.completed"', createdAt: '"2026-05-10T09:12:00Z"', data: '{}' }
    if (json === undefined) delete members[name]
    else members[name] = json
    return '{' + Object.entries(members).map(([key, value]) => `"${key}":${value}`).join(',') + '}'
  }
  const cases: EnvelopeCase[] = [
    { name: 'ok/minimal', comment: 'The four documented members: id, type, createdAt and an empty data object.', body: minimal, expected: accepted('evt_1', 'action.completed') },
    { name: 'ok/contract-example', comment: 'The contract\'s example envelope.', body: SMALL_BODY, expected: accepted('evt_abc123', 'action.completed') },
    { name: 'ok/unknown-type-and-fields', comment: 'Undocumented event types and fields are passed through, never refused.', body: '{"id":"evt_2","type":"reward.future_event","createdAt":"2026-05-10T09:12:00Z","version":3,"data":{"anything":[1,{"x":null}]}}', expected: accepted('evt_2', 'reward.future_event') },
    { name: 'ok/surrounding-whitespace', comment: 'JSON whitespace (space, tab, CR, LF) around the object.', body: ' \t\r\n' + minimal + '\r\n', expected: accepted('evt_1', 'action.completed') },
    { name: 'ok/bom', comment: 'A leading UTF-8 BOM is ignored when parsing (RFC 8259 section 8.1).', body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes(minimal)]), expected: accepted('evt_1', 'action.completed') },
    { name: 'ok/escaped-strings', comment: 'Escapes in id and type are decoded before they are checked.', body: '{"id":"evt_\\u00e9\\ud83c\\udf81","type":"action\\u002ecompleted","createdAt":"2026-05-10T09:12:00Z","data":{}}', expected: accepted('evt_é🎁', 'action.completed') },
    { name: 'ok/unicode-raw', comment: 'Raw UTF-8 in id and type.', body: '{"id":"evt_募捐","type":"campaign.activated","createdAt":"2026-05-10T09:12:00Z","data":{}}', expected: accepted('evt_募捐', 'campaign.activated') },
    { name: 'ok/constructor-string', comment: 'A "constructor" member that is not an object with "prototype" is ordinary data.', body: '{"id":"evt_3","type":"action.completed","createdAt":"2026-05-10T09:12:00Z","data":{"constructor":"x"}}', expected: accepted('evt_3', 'action.completed') },
    { name: 'ok/proto-as-value', comment: '"__proto__" as a string value, not a member name, is ordinary data.', body: '{"id":"__proto__","type":"action.completed","createdAt":"2026-05-10T09:12:00Z","data":{"note":"__proto__"}}', expected: accepted('__proto__', 'action.completed') },
    { name: 'ok/created-at-not-iso', comment: 'createdAt must be a non-empty string; its format is not checked, so a date written differently does not cost the event.', body: withMember('createdAt', '"Sun, 10 May 2026 09:12:00 GMT"'), expected: accepted('evt_1', 'action.completed') },
    { name: 'ok/data-members-unchecked', comment: 'The members of data are not checked, even for a documented type.', body: withMember('data', '{"tokensDistributed":"fifty"}'), expected: accepted('evt_1', 'action.completed') },

    { name: 'json/empty', comment: 'A zero-length body.', body: '', expected: notJson },
    { name: 'json/whitespace-only', comment: 'Whitespace and nothing else.', body: ' \n\t', expected: notJson },
    { name: 'json/truncated', comment: 'Cut off mid-object.', body: '{"id":"evt_1","type":', expected: notJson },
    { name: 'json/trailing-garbage', comment: 'A value followed by more text.', body: minimal + ' x', expected: notJson },
    { name: 'json/two-objects', comment: 'Two envelopes back to back.', body: minimal + minimal, expected: notJson },
    { name: 'json/trailing-comma', comment: 'A trailing comma.', body: '{"id":"evt_1","type":"action.completed",}', expected: notJson },
    { name: 'json/single-quotes', comment: 'Single-quoted strings.', body: '{\'id\':\'evt_1\',\'type\':\'action.completed\'}', expected: notJson },
    { name: 'json/invalid-utf8', comment: 'A byte that is never valid UTF-8 inside a string; bad bytes are refused, not replaced.', body: Buffer.concat([bytes('{"id":"evt_'), Buffer.from([0xff]), bytes('","type":"action.completed"}')]), expected: notJson },
    { name: 'json/overlong-utf8', comment: 'An overlong two-byte encoding of "/" (0xC0 0xAF).', body: Buffer.concat([bytes('{"id":"evt_'), Buffer.from([0xc0, 0xaf]), bytes('","type":"action.completed"}')]), expected: notJson },
    { name: 'json/utf16le', comment: 'The minimal envelope encoded as UTF-16LE; JSON on the wire is UTF-8.', body: Buffer.from(minimal, 'utf16le'), expected: notJson },
    { name: 'json/proto-top-level', comment: 'A "__proto__" member at the top level, which could poison prototypes downstream.', body: '{"id":"evt_1","type":"action.completed","__proto__":{"isAdmin":true}}', expected: notJson },
    { name: 'json/proto-nested', comment: 'A "__proto__" member inside data.', body: '{"id":"evt_1","type":"action.completed","data":{"a":[{"__proto__":{"isAdmin":true}}]}}', expected: notJson },
    { name: 'json/proto-escaped', comment: '"__proto__" spelled with a JSON escape, which decodes to the same key.', body: '{"id":"evt_1","type":"action.completed","\\u005f_proto__":{"isAdmin":true}}', expected: notJson },
    { name: 'json/proto-escaped-inside', comment: '"__proto__" with an escape in the middle: the text never holds "proto" spelled out.', body: '{"id":"evt_1","type":"action.completed","data":{"__pr\\u006fto__":{"isAdmin":true}}}', expected: notJson },
    { name: 'json/constructor-prototype-escaped', comment: 'A "constructor" object whose "prototype" member is spelled with an escape.', body: '{"id":"evt_1","type":"action.completed","constructor":{"pr\\u006ftotype":{"isAdmin":true}}}', expected: notJson },
    { name: 'json/constructor-prototype', comment: 'A "constructor" object with a "prototype" member.', body: '{"id":"evt_1","type":"action.completed","constructor":{"prototype":{"isAdmin":true}}}', expected: notJson },

    { name: 'envelope/null', comment: 'JSON null.', body: 'null', expected: notEnvelope },
    { name: 'envelope/array-empty', comment: 'An empty array.', body: '[]', expected: notEnvelope },
    { name: 'envelope/array-of-envelopes', comment: 'A batch: one delivery carries one event.', body: `[${minimal}]`, expected: notEnvelope },
    { name: 'envelope/number', comment: 'A number.', body: '42', expected: notEnvelope },
    { name: 'envelope/string', comment: 'A string.', body: '"evt_1"', expected: notEnvelope },
    { name: 'envelope/boolean', comment: 'true.', body: 'true', expected: notEnvelope },
    { name: 'envelope/empty-object', comment: 'No members.', body: '{}', expected: notEnvelope },
    { name: 'envelope/id-missing', comment: 'type without id.', body: '{"type":"action.completed"}', expected: notEnvelope },
    { name: 'envelope/type-missing', comment: 'id without type.', body: '{"id":"evt_1"}', expected: notEnvelope },
    { name: 'envelope/id-number', comment: 'A numeric id.', body: '{"id":123,"type":"action.completed"}', expected: notEnvelope },
    { name: 'envelope/id-null', comment: 'A null id.', body: '{"id":null,"type":"action.completed"}', expected: notEnvelope },
    { name: 'envelope/id-boolean', comment: 'A boolean id.', body: '{"id":true,"type":"action.completed"}', expected: notEnvelope },
    { name: 'envelope/id-object', comment: 'An object id.', body: '{"id":{"value":"evt_1"},"type":"action.completed"}', expected: notEnvelope },
    { name: 'envelope/id-empty', comment: 'An empty id cannot identify an event for deduplication.', body: '{"id":"","type":"action.completed"}', expected: notEnvelope },
    { name: 'envelope/type-number', comment: 'A numeric type.', body: '{"id":"evt_1","type":7}', expected: notEnvelope },
    { name: 'envelope/type-array', comment: 'A type given as a list.', body: '{"id":"evt_1","type":["action.completed"]}', expected: notEnvelope },
    { name: 'envelope/type-empty', comment: 'An empty type.', body: '{"id":"evt_1","type":""}', expected: notEnvelope },
    { name: 'envelope/created-at-missing', comment: 'The documented envelope always has createdAt.', body: withMember('createdAt', undefined), expected: notEnvelope },
    { name: 'envelope/created-at-number', comment: 'createdAt as epoch seconds rather than a string.', body: withMember('createdAt', '1778404320'), expected: notEnvelope },
    { name: 'envelope/created-at-empty', comment: 'An empty createdAt.', body: withMember('createdAt', '""'), expected: notEnvelope },
    { name: 'envelope/data-missing', comment: 'The documented envelope always has data.', body: withMember('data', undefined), expected: notEnvelope },
    { name: 'envelope/data-null', comment: 'data must be an object.', body: withMember('data', 'null'), expected: notEnvelope },
    { name: 'envelope/data-array', comment: 'data given as a list.', body: withMember('data', '[{"actionId":"act_1"}]'), expected: notEnvelope },
    { name: 'envelope/data-string', comment: 'data given as a string of JSON.', body: withMember('data', '"{}"'), expected: notEnvelope }
  ]
  return cases.map((c) => ({
    name: c.name,
    comment: c.comment,
    bodyBase64: (typeof c.body === 'string' ? bytes(c.body) : c.body).toString('base64'),
    expected: c.expected
  }))
}

export function buildEnvelopeDocument (): object {
  return {
    version: 1,
    description: {
      summary: 'Known-answer vectors for parsing a verified SIR Giving webhook body into an event envelope. Generated by test/vectors/generate.ts in the sir-webhooks repository.',
      parsing: 'The body must be UTF-8 (a leading BOM is ignored; any invalid or overlong sequence is INVALID_JSON, never replaced) holding exactly one JSON value. A member named "__proto__" anywhere, or a "constructor" object with a "prototype" member, is INVALID_JSON.',
      envelope: 'The value must be an object whose "id", "type" and "createdAt" are non-empty strings and whose "data" is an object (not null, not an array), as the platform documents the envelope; anything else is INVALID_ENVELOPE. The format of "createdAt" and the members of "data" are not checked. Other members, and unknown event types, are passed through.',
      status: 'Both refusals are answered with HTTP 400.',
      fields: {
        name: 'Unique, stable identifier, grouped by prefix.',
        comment: 'What the vector exercises.',
        bodyBase64: 'The raw request body, base64 (RFC 4648, with padding).',
        expected: '{ "valid": true, "id": ..., "type": ... } or { "valid": false, "reason": "INVALID_JSON" | "INVALID_ENVELOPE", "status": 400 }.'
      }
    },
    vectors: buildEnvelopeVectors()
  }
}

export const signatureVectorsUrl = new URL('./sir-v1.json', import.meta.url)
export const envelopeVectorsUrl = new URL('./envelope-v1.json', import.meta.url)

export function serialize (document: object): string {
  return JSON.stringify(document, null, 2) + '\n'
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(signatureVectorsUrl, serialize(buildSignatureDocument()))
  writeFileSync(envelopeVectorsUrl, serialize(buildEnvelopeDocument()))
}
