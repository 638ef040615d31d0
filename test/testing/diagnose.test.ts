import t from 'tap'
import { sign } from '../../src/index.js'
import { diagnose, type DiagnoseInput } from '../../src/testing/index.js'

const secret = 'whsec_ZGlhZ25vc2U'
const body = '{"id":"evt_1","type":"action.completed","data":{"actionId":"act_1","tokensDistributed":50}}'
const at = 1_778_404_320
const now = at * 1000

function codes (input: Partial<DiagnoseInput>): string[] {
  const signed = sign({ secret, rawBody: body, timestamp: at })
  const result = diagnose({ secret, rawBody: body, ...signed, now, ...input })
  return result.ok ? [] : result.reasons.map((reason) => reason.code)
}

t.test('a delivery that verifies is ok, with its skew', async (t) => {
  const signed = sign({ secret, rawBody: body, timestamp: at })
  t.same(diagnose({ secret, rawBody: Buffer.from(body), ...signed, now: now + 3000 }), { ok: true, skewSeconds: 3 })
})

t.test('missing and malformed headers are named before any hashing', async (t) => {
  t.same(codes({ signature: undefined }), ['MISSING_SIGNATURE'])
  t.same(codes({ timestamp: '' }), ['MISSING_TIMESTAMP'])
  t.same(codes({ timestamp: '17784043.5' }), ['INVALID_TIMESTAMP'])
  t.same(codes({ signature: 'sha256=abc' }), ['MALFORMED_SIGNATURE'])
})

t.test('a bare hex signature is named as lacking its sha256= prefix', async (t) => {
  const signed = sign({ secret, rawBody: body, timestamp: at })
  t.same(codes({ signature: signed.signature.slice('sha256='.length) }), ['MISSING_PREFIX'])
})

t.test('clock skew says how far and which way', async (t) => {
  const past = diagnose({ secret, rawBody: body, ...sign({ secret, rawBody: body, timestamp: at - 400 }), now })
  t.equal(past.ok, false)
  t.match(!past.ok && past.reasons[0], { code: 'CLOCK_SKEW', message: /400 seconds in the past/ })
  const future = diagnose({ secret, rawBody: body, ...sign({ secret, rawBody: body, timestamp: at + 320 }), now })
  t.match(!future.ok && future.reasons[0], { code: 'CLOCK_SKEW', message: /320 seconds in the future, beyond the ±300 s window/ })
  const wider = diagnose({ secret, rawBody: body, ...sign({ secret, rawBody: body, timestamp: at - 400 }), now, toleranceSeconds: 600 })
  t.equal(wider.ok, true, 'within a wider tolerance it verifies')
})

t.test('a timestamp in milliseconds is named as such', async (t) => {
  const signed = sign({ secret, rawBody: body, timestamp: now })
  t.same(codes({ ...signed }), ['TIMESTAMP_IN_MILLISECONDS'])
})

t.test('body causes: trailing newline either way, re-serialization', async (t) => {
  t.same(codes({ rawBody: body + '\n' }), ['TRAILING_NEWLINE'])
  t.same(codes({ rawBody: body + '\r\n' }), ['TRAILING_NEWLINE'])
  const signedWithNewline = sign({ secret, rawBody: body + '\n', timestamp: at })
  t.same(codes({ ...signedWithNewline, rawBody: body }), ['MISSING_TRAILING_NEWLINE'])
  t.same(codes({ rawBody: JSON.stringify(JSON.parse(body), null, 2) }), ['BODY_RESERIALIZED'])
  t.same(codes({ rawBody: JSON.stringify(JSON.parse(body), null, '\t') }), ['BODY_RESERIALIZED'], 'any layout that compacts back to the signed bytes')
  const signedPretty = sign({ secret, rawBody: JSON.stringify(JSON.parse(body), null, 2), timestamp: at })
  t.same(codes({ ...signedPretty, rawBody: body }), ['BODY_RESERIALIZED'], 'a compacted copy of a pretty body')
})

t.test('secret causes: whitespace, prefix missing, prefix extra', async (t) => {
  t.same(codes({ secret: secret + '\n' }), ['SECRET_WHITESPACE'])
  t.same(codes({ secret: secret.slice('whsec_'.length) }), ['SECRET_LACKS_PREFIX'])
  const withoutPrefix = sign({ secret: secret.slice('whsec_'.length), rawBody: body, timestamp: at })
  t.same(codes({ ...withoutPrefix }), ['SECRET_HAS_PREFIX'])
  t.same(codes({ secret: ' ' + secret.slice('whsec_'.length) }), ['SECRET_WHITESPACE', 'SECRET_LACKS_PREFIX'])
})

t.test('uppercase hex, alone and with another cause', async (t) => {
  const signed = sign({ secret, rawBody: body, timestamp: at })
  const upper = 'sha256=' + signed.signature.slice('sha256='.length).toUpperCase()
  t.same(codes({ signature: upper }), ['UPPERCASE_HEX'])
  t.same(codes({ signature: upper, rawBody: body + '\n' }), ['UPPERCASE_HEX', 'TRAILING_NEWLINE'])
})

t.test('the fewest changes win, and skew is reported beside a body cause', async (t) => {
  const stale = sign({ secret, rawBody: body, timestamp: at - 1000 })
  t.same(codes({ ...stale, rawBody: body + '\n' }), ['TRAILING_NEWLINE', 'CLOCK_SKEW'])
})

t.test('nothing common explains it: UNKNOWN, and the messages never hold the secret or signature', async (t) => {
  const signed = sign({ secret: 'whsec_other', rawBody: body, timestamp: at })
  const result = diagnose({ secret, rawBody: body, ...signed, now })
  t.equal(result.ok, false)
  if (result.ok) return
  t.same(result.reasons.map((reason) => reason.code), ['UNKNOWN'])
  const text = JSON.stringify(result)
  t.notMatch(text, secret.slice('whsec_'.length))
  t.notMatch(text, signed.signature.slice('sha256='.length))
})

t.test('a body that is not JSON still gets the newline check', async (t) => {
  const raw = 'not json'
  const signed = sign({ secret, rawBody: raw, timestamp: at })
  t.same(codes({ ...signed, rawBody: raw + '\n' }), ['TRAILING_NEWLINE'])
})

t.test('a re-serialized body names the form that was signed', async (t) => {
  const compactOfPretty = diagnose({ secret, rawBody: body, ...sign({ secret, rawBody: JSON.stringify(JSON.parse(body), null, 2), timestamp: at }), now })
  t.match(!compactOfPretty.ok && compactOfPretty.reasons[0], { code: 'BODY_RESERIALIZED', message: /which were JSON pretty-printed with 2 spaces/ })
  // Python's json.dumps writes ", " and ": "; a Node receiver holding JSON.stringify(req.body) has lost them.
  const python = '{"id": "evt_1", "type": "action.completed", "data": {"note": "a, b: \\"c\\"", "tokensDistributed": 50}}'
  const compact = JSON.stringify(JSON.parse(python))
  const fromPython = diagnose({ secret, rawBody: compact, ...sign({ secret, rawBody: python, timestamp: at }), now })
  t.match(!fromPython.ok && fromPython.reasons[0], { code: 'BODY_RESERIALIZED', message: /separators \(Python's json\.dumps\)/ })
})
