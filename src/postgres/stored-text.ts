import { parseEnvelope } from '../core/envelope.js'
import type { AnyEvent } from '../core/events.js'

/**
 * Postgres text holds neither U+0000 nor a lone surrogate (pg would send the
 * latter as U+FFFD, so that two ids differing there would collide), and a NUL
 * in a simple query's text cuts the query short. JSON's escapes can say both:
 * such an id or type is stored as its JSON string literal, quotes included.
 * (In a `u` regular expression a surrogate matches `\p{Cs}` only when lone.)
 */
const UNSTORABLE = /[\0\p{Cs}]/u

function storable (text: string): boolean {
  return !UNSTORABLE.test(text)
}

/**
 * The text an event id (or type) is stored and looked up under: the id itself,
 * or, for an id that Postgres text cannot hold, its JSON string literal. Such an
 * id shares its key only with an id spelled as that literal, quotes and
 * backslashes included, which no sender writes by accident.
 */
export function storedKey (id: string): string {
  return storable(id) ? id : JSON.stringify(id)
}

/** Free text for a column (an error message): a NUL is written as `\u0000`. */
export function storedText (text: string): string {
  return text.includes('\u0000') ? text.replaceAll('\u0000', '\\u0000') : text
}

/** The body as stored: the bytes received (valid UTF-8 JSON, checked before the inbox sees it), or the event serialized when none were given. */
export function bodyText (event: AnyEvent, rawBody: Uint8Array | undefined): string {
  return rawBody === undefined ? JSON.stringify(event) : Buffer.from(rawBody.buffer, rawBody.byteOffset, rawBody.byteLength).toString('utf8')
}

/**
 * A stored body parsed as the receiver parsed it when it came in (the same
 * checks against prototype keys). Undefined when the row no longer holds an
 * event: only an edit in the database does that.
 */
export function eventOf (body: string): AnyEvent | undefined {
  const parsed = parseEnvelope(Buffer.from(body, 'utf8'))
  return parsed.ok ? parsed.event : undefined
}
