import secureJson from 'secure-json-parse'
import type { AnyEvent } from './events.js'

export type ParseResult =
  | { ok: true, event: AnyEvent }
  | { ok: false, code: 'INVALID_JSON' | 'INVALID_ENVELOPE' | 'EVENT_ID_TOO_LONG' }

/**
 * The longest event id the receiver takes, in bytes of UTF-8. Ids are keys
 * everywhere (the dedupe memory, the stores' indexes, Redis keys, span attributes,
 * the CLI's tables), so an unbounded one costs memory and output without end:
 * 100 KB ids held 287 MB of dedupe memory for 3 000 events. Platform ids are
 * short (`evt_abc123`); 256 bytes leaves room for any id scheme (a UUID is 36).
 */
export const MAX_EVENT_ID_BYTES = 256

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false })

/**
 * Poisoning needs a `__proto__` key, or a `constructor` key whose value has a
 * `prototype` key (the only `constructor` secure-json-parse refuses): either way
 * the text holds "proto", spelled out or written with `\u` escapes. A text with
 * neither cannot poison, and plain JSON.parse is then as safe; secure-json-parse's
 * scan of every body was about 9% of a small delivery's CPU in the benchmark's
 * profile, and looking for "constructor" too cost 3 µs on an 8 KB body. A leading
 * BOM also goes the slow way, which strips it as before.
 */
function mayHoldPoison (text: string): boolean {
  return text.includes('proto') || text.includes('\\u') || text.charCodeAt(0) === 0xfeff
}

/**
 * Parses a verified body. Called only after the signature holds, so an attacker
 * cannot make the receiver parse anything. `__proto__` and `constructor.prototype`
 * keys are refused, as Fastify's own JSON parser does.
 */
export function parseEnvelope (rawBody: Uint8Array): ParseResult {
  let value: unknown
  try {
    // A fatal decoder: JSON must be UTF-8, and silently replacing bad bytes
    // would hand handlers text the sender never wrote.
    const text = decoder.decode(rawBody)
    value = mayHoldPoison(text)
      ? secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' })
      : JSON.parse(text)
  } catch {
    return { ok: false, code: 'INVALID_JSON' }
  }
  if (!isEnvelope(value)) return { ok: false, code: 'INVALID_ENVELOPE' }
  return idFits(value.id) ? { ok: true, event: value } : { ok: false, code: 'EVENT_ID_TOO_LONG' }
}

/**
 * Whether an id is at most MAX_EVENT_ID_BYTES of UTF-8. A UTF-16 code unit is 1
 * to 3 bytes (a surrogate pair 4 for its two units), so only ids of 86 to 256
 * units need counting; a platform id is decided by its length alone. A lone
 * surrogate counts 3 bytes, as the replacement character it would be written as.
 */
export function idFits (id: string): boolean {
  if (id.length > MAX_EVENT_ID_BYTES) return false
  if (id.length * 3 <= MAX_EVENT_ID_BYTES) return true
  return utf8Length(id) <= MAX_EVENT_ID_BYTES
}

function utf8Length (text: string): number {
  let bytes = 0
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i)
    if (unit < 0x80) bytes += 1
    else if (unit < 0x800) bytes += 2
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4
      i += 1
    } else bytes += 3
  }
  return bytes
}

/**
 * The envelope as the platform documents it: `id`, `type`, `createdAt` and `data`,
 * always. What `WebhookEvent` promises is what is checked here, no more: `createdAt`'s
 * format is not (a date the sender wrote differently must not cost the event), and
 * `data` is an object whose members are not, since only `action.completed`'s are documented.
 */
function isEnvelope (value: unknown): value is AnyEvent {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false
  const envelope = value as Record<string, unknown>
  return isNonEmptyString(envelope.id) && isNonEmptyString(envelope.type) && isNonEmptyString(envelope.createdAt) &&
    envelope.data !== null && typeof envelope.data === 'object' && !Array.isArray(envelope.data)
}

function isNonEmptyString (value: unknown): value is string {
  return typeof value === 'string' && value.length > 0
}
