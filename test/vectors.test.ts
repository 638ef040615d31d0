import { readFileSync } from 'node:fs'
import t from 'tap'
import { verify } from '../src/core/verify-node.js'
import { verifyAsync } from '../src/core/verify-web.js'
import { parseEnvelope } from '../src/core/envelope.js'
import { refusalStatus } from '../src/core/errors.js'
import {
  buildEnvelopeDocument,
  buildSignatureDocument,
  envelopeVectorsUrl,
  serialize,
  signatureVectorsUrl,
  type EnvelopeVector,
  type SignatureVector
} from './vectors/generate.js'

const signatureText = readFileSync(signatureVectorsUrl, 'utf8')
const envelopeText = readFileSync(envelopeVectorsUrl, 'utf8')
const signatureVectors = (JSON.parse(signatureText) as { vectors: SignatureVector[] }).vectors
const envelopeVectors = (JSON.parse(envelopeText) as { vectors: EnvelopeVector[] }).vectors

const verificationCodes = ['MISSING_SIGNATURE', 'MALFORMED_SIGNATURE', 'SIGNATURE_MISMATCH', 'MISSING_TIMESTAMP', 'INVALID_TIMESTAMP', 'TIMESTAMP_OUT_OF_RANGE']

/** Base64 decoding in Node skips bad characters silently; a typo in a vector must not go unnoticed. */
function decodeBody (bodyBase64: string): Buffer {
  const body = Buffer.from(bodyBase64, 'base64')
  if (body.toString('base64') !== bodyBase64) throw new Error(`not canonical base64: ${bodyBase64.slice(0, 40)}`)
  return body
}

function isWellFormedUtf8 (body: Buffer): boolean {
  return Buffer.from(body.toString('utf8'), 'utf8').equals(body)
}

t.test('the committed vector files are what generate.ts writes', async (t) => {
  // Editing the JSON by hand, or the generator without rerunning it, would let
  // the two drift; SDK authors read the JSON, reviewers read the generator.
  t.equal(signatureText, serialize(buildSignatureDocument()), 'test/vectors/sir-v1.json: run `npx ts-node-esm test/vectors/generate.ts`')
  t.equal(envelopeText, serialize(buildEnvelopeDocument()), 'test/vectors/envelope-v1.json: run `npx ts-node-esm test/vectors/generate.ts`')
})

t.test('the signature vectors are well formed and cover every refusal', async (t) => {
  t.ok(signatureVectors.length >= 30, `${signatureVectors.length} vectors`)
  t.equal(new Set(signatureVectors.map((v) => v.name)).size, signatureVectors.length, 'names are unique')
  for (const vector of signatureVectors) {
    t.not(vector.secret === undefined, vector.secrets === undefined, `${vector.name}: exactly one of secret and secrets`)
    t.ok(Number.isSafeInteger(vector.nowSeconds * 1000), `${vector.name}: clock in whole milliseconds`)
    t.ok(Number.isSafeInteger(vector.toleranceSeconds), `${vector.name}: whole-second tolerance`)
    t.doesNotThrow(() => decodeBody(vector.bodyBase64), `${vector.name}: body is canonical base64`)
  }
  const reasons = new Set(signatureVectors.flatMap((v) => v.expected.valid ? [] : [v.expected.reason]))
  t.same([...reasons].sort(), [...verificationCodes].sort(), 'every verification code has a vector')
  t.ok(signatureVectors.some((v) => v.expected.valid && v.expected.secretIndex > 0), 'rotation to a later secret is covered')
})

for (const vector of signatureVectors) {
  t.test(`sir-v1 ${vector.name}`, async (t) => {
    const rawBody = decodeBody(vector.bodyBase64)
    const input = {
      secret: vector.secret ?? vector.secrets ?? [],
      signature: vector.signature,
      timestamp: vector.timestamp,
      toleranceSeconds: vector.toleranceSeconds,
      now: vector.nowSeconds * 1000
    }
    const result = verify({ ...input, rawBody })
    t.same(await verifyAsync({ ...input, rawBody }), result, 'the Web Crypto verifier gives the same answer')
    t.equal(result.ok, vector.expected.valid, 'ok')
    if (vector.expected.valid) {
      t.equal(result.ok && result.secretIndex, vector.expected.secretIndex, 'secretIndex')
    } else {
      t.equal(!result.ok && result.code, vector.expected.reason, 'code')
      t.equal(!result.ok && result.status, vector.expected.status, 'status')
    }
    // verify documents a string body as its UTF-8 bytes; that only holds where
    // the bytes are well-formed UTF-8, so the other bodies are not tried this way.
    if (isWellFormedUtf8(rawBody)) {
      t.same(verify({ ...input, rawBody: rawBody.toString('utf8') }), result, 'the same answer for the body as a string')
    }
  })
}

t.test('the envelope vectors are well formed and cover every outcome', async (t) => {
  t.equal(new Set(envelopeVectors.map((v) => v.name)).size, envelopeVectors.length, 'names are unique')
  for (const vector of envelopeVectors) t.doesNotThrow(() => decodeBody(vector.bodyBase64), `${vector.name}: body is canonical base64`)
  const outcomes = new Set(envelopeVectors.map((v) => v.expected.valid ? 'ok' : v.expected.reason))
  t.same([...outcomes].sort(), ['INVALID_ENVELOPE', 'INVALID_JSON', 'ok'])
})

for (const vector of envelopeVectors) {
  t.test(`envelope-v1 ${vector.name}`, async (t) => {
    const result = parseEnvelope(decodeBody(vector.bodyBase64))
    t.equal(result.ok, vector.expected.valid, 'ok')
    if (vector.expected.valid) {
      t.equal(result.ok && result.event.id, vector.expected.id, 'id')
      t.equal(result.ok && result.event.type, vector.expected.type, 'type')
    } else {
      t.equal(!result.ok && result.code, vector.expected.reason, 'code')
      t.equal(!result.ok && refusalStatus[result.code], vector.expected.status, 'status')
    }
    t.notOk(Object.prototype.hasOwnProperty.call(Object.prototype, 'isAdmin'), 'Object.prototype is untouched')
  })
}
