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
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { ok: false, code: 'INVALID_ENVELOPE' }
  }
  const envelope = value as Record<string, unknown>
  if (typeof envelope.id !== 'string' || envelope.id.length === 0 || typeof envelope.type !== 'string' || envelope.type.length === 0) {
    return { ok: false, code: 'INVALID_ENVELOPE' }
  }
  return { ok: true, event: envelope as AnyEvent }
}
