import secureJson from 'secure-json-parse'
import type { AnyEvent } from './events.js'

export type ParseResult =
  | { ok: true, event: AnyEvent }
  | { ok: false, code: 'INVALID_JSON' | 'INVALID_ENVELOPE' }

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
  return isEnvelope(value) ? { ok: true, event: value } : { ok: false, code: 'INVALID_ENVELOPE' }
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
