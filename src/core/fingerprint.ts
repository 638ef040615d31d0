// A body of up to WHOLE bytes is hashed whole; a longer one by its length, its
// first and last EDGE bytes and SAMPLES words spread over the rest.
const EDGE = 128
const SAMPLES = 16
const WHOLE = 2 * EDGE + 4 * SAMPLES

/**
 * A 32-bit fingerprint of a body, never 0 (0 means "none recorded"), for the
 * memory inbox to tell a duplicate whose body differs from the first one. It
 * reads at most 320 bytes whatever the body's size: hashing all of an
 * 8 KB body cost about 5 µs (the core's own work is about 8 µs) for every
 * accepted delivery, to serve a warning. The cost of the bound: two
 * bodies of one length that differ only between the samples of the middle of a
 * body over 320 bytes have one fingerprint, and that duplicate is answered as a
 * plain one. The ends hold what a reused id changes first (`type`, `createdAt`
 * near the start, `data` at the end), and a different length is always seen.
 */
export function bodyFingerprint (bytes: Uint8Array): number {
  const length = bytes.byteLength
  let hash = Math.imul(0x811c9dc5 ^ length, 0x01000193)
  if (length <= WHOLE) {
    hash = mix(bytes, 0, length, hash)
  } else {
    hash = mix(bytes, 0, EDGE, hash)
    hash = mix(bytes, length - EDGE, length, hash)
    const step = Math.floor((length - 2 * EDGE - 4) / SAMPLES)
    for (let sample = 0, at = EDGE; sample < SAMPLES; sample++, at += step) hash = step4(hash, word(bytes, at))
  }
  return (hash | 0) === 0 ? 1 : hash | 0
}

/** Bytes [from, to) into the hash, four at a time (one multiply per word). */
function mix (bytes: Uint8Array, from: number, to: number, hash: number): number {
  let at = from
  for (; at + 4 <= to; at += 4) hash = step4(hash, word(bytes, at))
  for (; at < to; at++) hash = step4(hash, bytes[at] as number)
  return hash
}

function word (bytes: Uint8Array, at: number): number {
  return (bytes[at] as number) | (bytes[at + 1] as number) << 8 | (bytes[at + 2] as number) << 16 | (bytes[at + 3] as number) << 24
}

// MurmurHash2's multiplier and a shift that folds the high bits back down.
function step4 (hash: number, value: number): number {
  const mixed = Math.imul(hash ^ value, 0x5bd1e995)
  return mixed ^ (mixed >>> 13)
}
