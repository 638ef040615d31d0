import secureJson from 'secure-json-parse'
import type { AnyEvent } from './events.js'

export type ParseResult =
  | { ok: true, event: AnyEvent }
  | { ok: false, code: 'INVALID_JSON' | 'INVALID_ENVELOPE' }

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false })

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
    value = secureJson.parse(decoder.decode(rawBody), undefined, {
      protoAction: 'error',
      constructorAction: 'error'
    })
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
