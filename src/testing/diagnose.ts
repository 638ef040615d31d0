import { timingSafeEqual } from 'node:crypto'
import { checkHeaders, single, skewOf } from '../core/signature-checks.js'
import { computeDigest, DEFAULT_TOLERANCE_SECONDS, SIGNATURE_PREFIX } from '../core/verify-node.js'

export type DiagnosisCode =
  | 'MISSING_SIGNATURE'
  | 'MISSING_TIMESTAMP'
  | 'INVALID_TIMESTAMP'
  | 'TIMESTAMP_IN_MILLISECONDS'
  | 'MALFORMED_SIGNATURE'
  | 'MISSING_PREFIX'
  | 'UPPERCASE_HEX'
  | 'CLOCK_SKEW'
  | 'SECRET_WHITESPACE'
  | 'SECRET_LACKS_PREFIX'
  | 'SECRET_HAS_PREFIX'
  | 'TRAILING_NEWLINE'
  | 'MISSING_TRAILING_NEWLINE'
  | 'BODY_RESERIALIZED'
  | 'UNKNOWN'

export interface DiagnosisReason {
  code: DiagnosisCode
  /** What is wrong and what to change. Never contains the secret, the signature or the body. */
  message: string
}

export type Diagnosis =
  | { ok: true, skewSeconds: number }
  /** `reasons` is ordered most likely first; several together explained the mismatch. */
  | { ok: false, reasons: DiagnosisReason[], skewSeconds?: number }

export interface DiagnoseInput {
  secret: string
  rawBody: Uint8Array | string
  signature: string | undefined | null
  timestamp: string | undefined | null
  /** Default 300, the contract's window. */
  toleranceSeconds?: number
  /** Milliseconds since the epoch. Default `Date.now()`. */
  now?: number
}

const SECRET_PREFIX = 'whsec_'
const HEX_SIGNATURE = /^sha256=[0-9a-fA-F]{64}$/
const BARE_HEX = /^[0-9a-fA-F]{64}$/
// Seconds reach 11 digits only in the year 5138; milliseconds have had 13 since 2001.
const MILLISECONDS_DIGITS = 13

interface Variant<T> {
  value: T
  reasons: DiagnosisReason[]
}

const HEADER_HINTS = {
  MISSING_SIGNATURE: 'There is no signature: pass the X-SIR-Signature header value.',
  MISSING_TIMESTAMP: 'There is no timestamp: pass the X-SIR-Timestamp header value.',
  INVALID_TIMESTAMP: 'The timestamp is not a whole number of Unix seconds (digits only).'
} as const

function reason (code: DiagnosisCode, message: string): DiagnosisReason {
  return { code, message }
}

function secretVariants (secret: string): Array<Variant<string>> {
  const variants: Array<Variant<string>> = [{ value: secret, reasons: [] }]
  const trimmed = secret.trim()
  const whitespace = trimmed !== secret
    ? [reason('SECRET_WHITESPACE', 'The secret has leading or trailing whitespace (a newline from a file or an environment variable, or a stray space when pasting); remove it.')]
    : []
  if (whitespace.length > 0) variants.push({ value: trimmed, reasons: whitespace })
  if (trimmed.startsWith(SECRET_PREFIX)) {
    variants.push({
      value: trimmed.slice(SECRET_PREFIX.length),
      reasons: [...whitespace, reason('SECRET_HAS_PREFIX', `The signature was made with the secret without its "${SECRET_PREFIX}" prefix; the secret is the whole string SIR Giving showed, prefix included, on both sides.`)]
    })
  } else {
    variants.push({
      value: SECRET_PREFIX + trimmed,
      reasons: [...whitespace, reason('SECRET_LACKS_PREFIX', `The secret lacks its "${SECRET_PREFIX}" prefix; use the whole string SIR Giving showed, prefix included.`)]
    })
  }
  return variants
}

function bodyVariants (body: Buffer): Array<Variant<Buffer>> {
  const variants: Array<Variant<Buffer>> = [{ value: body, reasons: [] }]
  const text = body.toString('utf8')
  const stripped = text.replace(/[\r\n]+$/, '')
  if (stripped !== text) {
    variants.push({
      value: Buffer.from(stripped),
      reasons: [reason('TRAILING_NEWLINE', 'The body ends with a newline that was not signed (added by an editor, `echo` or a proxy); verify the bytes exactly as received.')]
    })
  } else {
    variants.push({
      value: Buffer.from(text + '\n'),
      reasons: [reason('MISSING_TRAILING_NEWLINE', 'The signed body ended with a newline that this body lacks; verify the bytes exactly as received.')]
    })
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(stripped)
  } catch {
    return variants
  }
  // The forms a parsed body is usually written back in: compact (JSON.stringify),
  // pretty with 2 or 4 spaces, and Python's json.dumps default separators.
  const forms: Array<[string, string]> = [
    ['compact JSON (JSON.stringify(JSON.parse(body)))', JSON.stringify(parsed)],
    ['JSON pretty-printed with 2 spaces', JSON.stringify(parsed, null, 2)],
    ['JSON pretty-printed with 4 spaces', JSON.stringify(parsed, null, 4)],
    ['JSON with ", " and ": " separators (Python\'s json.dumps)', pythonSeparators(JSON.stringify(parsed))]
  ]
  for (const [form, candidate] of forms) {
    if (candidate === text || candidate === stripped) continue
    variants.push({
      value: Buffer.from(candidate),
      reasons: [reason('BODY_RESERIALIZED', `The body differs from the bytes that were signed, which were ${form}. The body was re-serialized (a parsed body turned back into text, or a reformatted copy); verify the raw request body.`)]
    })
  }
  return variants
}

/** Re-spaces compact JSON as Python's json.dumps writes it, outside strings only. */
function pythonSeparators (compact: string): string {
  let out = ''
  let inString = false
  for (let index = 0; index < compact.length; index++) {
    const char = compact[index] as string
    out += char
    if (inString) {
      if (char === '\\') { out += compact[index + 1] ?? ''; index++ } else if (char === '"') inString = false
    } else if (char === '"') inString = true
    else if (char === ',' || char === ':') out += ' '
  }
  return out
}

function matches (secret: string, timestamp: string, body: Buffer, expected: Buffer): boolean {
  return timingSafeEqual(computeDigest(secret, timestamp, body), expected)
}

function skewReason (skewSeconds: number, tolerance: number): DiagnosisReason {
  const seconds = Math.round(Math.abs(skewSeconds))
  const direction = skewSeconds > 0 ? 'in the past' : 'in the future'
  return reason('CLOCK_SKEW', `Clock skew of ${seconds} seconds: the timestamp is ${seconds} seconds ${direction}, beyond the ±${tolerance} s window. Check the receiver's clock (NTP), or this is an old delivery being replayed.`)
}

/**
 * Says why a delivery does not verify, by trying the usual mistakes one at a
 * time and in pairs and reporting the combination that makes the signature
 * hold. Pure: the same input always gives the same answer.
 */
export function diagnose (input: DiagnoseInput): Diagnosis {
  // The receiver's own header checks, but for the signature's form and the window,
  // which are diagnosed below more leniently, to name the mistake.
  const checked = checkHeaders({ rawBody: input.rawBody, signature: input.signature, timestamp: input.timestamp, now: input.now, toleranceSeconds: Infinity })
  if (!checked.ok && checked.code in HEADER_HINTS) {
    const code = checked.code as keyof typeof HEADER_HINTS
    return { ok: false, reasons: [reason(code, HEADER_HINTS[code])] }
  }
  // Present now (checkHeaders has refused what is missing), read as the receiver reads them.
  const timestamp = single(input.timestamp) as string
  let signature = single(input.signature) as string

  const reasons: DiagnosisReason[] = []
  signature = signature.trim()
  if (BARE_HEX.test(signature)) {
    reasons.push(reason('MISSING_PREFIX', `The signature lacks its "${SIGNATURE_PREFIX}" prefix; send the header value as it came.`))
    signature = SIGNATURE_PREFIX + signature
  }
  if (!HEX_SIGNATURE.test(signature)) {
    return { ok: false, reasons: [reason('MALFORMED_SIGNATURE', 'The signature is not of the form sha256=<64 hex digits>; pass the X-SIR-Signature header value whole.')] }
  }
  if (signature !== signature.toLowerCase()) {
    reasons.push(reason('UPPERCASE_HEX', 'The signature\'s hex digits are uppercase; the platform writes lowercase and receivers compare the strings. Do not change the header\'s case.'))
  }
  const expected = Buffer.from(signature.slice(SIGNATURE_PREFIX.length), 'hex')

  const tolerance = input.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS
  const skewSeconds = skewOf(Number(timestamp), input.now)
  const skewed = Math.abs(skewSeconds) > tolerance
  const timeReasons = !skewed
    ? []
    : timestamp.length >= MILLISECONDS_DIGITS
      ? [reason('TIMESTAMP_IN_MILLISECONDS', 'The timestamp is in milliseconds; X-SIR-Timestamp is in seconds.')]
      : [skewReason(skewSeconds, tolerance)]

  const body = Buffer.from(input.rawBody)
  // Fewest changes first: a single cause is likelier than two together.
  const candidates: Array<DiagnosisReason[]> = []
  const secrets = secretVariants(input.secret)
  const bodies = bodyVariants(body)
  for (const secret of secrets) {
    for (const variant of bodies) {
      if (matches(secret.value, timestamp, variant.value, expected)) candidates.push([...secret.reasons, ...variant.reasons])
    }
  }
  candidates.sort((a, b) => a.length - b.length)
  const best = candidates[0]
  if (best === undefined) {
    reasons.push(reason('UNKNOWN', 'The signature does not match, and no common mistake explains it: the secret is probably another endpoint\'s or a rotated one, or the body was changed in transit.'))
    return { ok: false, reasons: [...reasons, ...timeReasons], skewSeconds }
  }
  const all = [...reasons, ...best, ...timeReasons]
  return all.length === 0 ? { ok: true, skewSeconds } : { ok: false, reasons: all, skewSeconds }
}
