/**
 * How an event id is stored. A JS string may hold lone surrogates (`"\ud800"` in
 * the JSON is valid), but SQLite text is UTF-8: better-sqlite3 writes such a
 * string as bytes that read back as U+FFFD, so the id read from a row no longer
 * matched the one written, and two ids differing only in a lone surrogate were
 * one. A well-formed id is stored as text, as before; any other as a BLOB of
 * its UTF-16 code units, which round-trips exactly. SQLite never finds a BLOB
 * equal to a text, so the two forms cannot collide.
 */
export type IdKey = string | Buffer

const LONE_SURROGATE = /\p{Surrogate}/u

export function idKey (id: string): IdKey {
  return LONE_SURROGATE.test(id) ? Buffer.from(id, 'utf16le') : id
}

export function idFromKey (key: IdKey): string {
  return typeof key === 'string' ? key : key.toString('utf16le')
}

/**
 * A set of ids as the two JSON arrays the statements take: text ids as they
 * are, BLOB ids in hex (JSON holds no bytes; the SQL unhexes them).
 */
export function idLists (ids: Iterable<string>): { running: string, runningBlobs: string } {
  const texts: string[] = []
  const blobs: string[] = []
  for (const id of ids) {
    const key = idKey(id)
    if (typeof key === 'string') texts.push(key)
    else blobs.push(key.toString('hex'))
  }
  return { running: JSON.stringify(texts), runningBlobs: JSON.stringify(blobs) }
}
