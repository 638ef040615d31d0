import type { DedupeOptions } from './options.js'

// An id of up to this many characters, all at or below U+00FF, is kept as bytes in
// the entry's slot; any other id is kept as a string beside it.
const SLOT_BYTES = 64
const FIRST_CAPACITY = 1024
const EMPTY = 0
const NONE = -1

/**
 * Remembers event ids for a retention window. Bounded twice: by time (an id is
 * forgotten `ttlSeconds` after it was last seen) and by count (the least recently
 * seen id is forgotten first), so a flood of distinct ids cannot grow memory
 * without end, and an id the sender keeps retrying is the last to be forgotten.
 *
 * Why not a `Map` or lru-cache: each remembered id was a string kept alive on the
 * JS heap, and with 100 000 of them the garbage collector's work made dedupe the
 * largest cost of an accepted delivery in the benchmark (see docs/performance.md).
 * Here the ids live in typed arrays: entries linked in the order they were last
 * seen (a doubly linked list through two Int32Arrays, so a repeat moves to the
 * newest end in constant time) and an open-addressing index over them, none of
 * which the collector has to trace.
 *
 * The hash is not keyed: an id reaches this store only after its delivery's
 * signature verified, so only the platform chooses ids.
 */
export class SeenIds {
  readonly #maxEntries: number
  readonly #ttlMs: number
  readonly #clock: () => number

  // Entries 0..#used-1 have been handed out; freed ones wait on #free, a stack
  // linked through #newer. The live ones form a list from #oldest to #newest in
  // the order they were last seen, which is also the order of #seenAt.
  #capacity = 0
  #used = 0
  #free = NONE
  #oldest = NONE
  #newest = NONE
  #live = 0
  #seenAt = new Float64Array(0)
  #older = new Int32Array(0)
  #newer = new Int32Array(0)
  #hashes = new Int32Array(0)
  #lengths = new Int32Array(0)
  // Each id's body fingerprint (core/fingerprint.ts), 0 when none was given.
  #fingerprints = new Int32Array(0)
  #bytes = new Uint8Array(0)
  // Ids that do not fit a slot, by entry. Rare: platform ids are short and ASCII.
  #spilled = new Map<number, string>()

  // The index: entry + 1 per slot (0 is empty), linear probing, at most half full.
  #index = new Int32Array(0)
  #mask = 0

  constructor (options: Required<DedupeOptions>, clock: () => number) {
    this.#maxEntries = options.maxEntries
    this.#ttlMs = options.ttlSeconds * 1000
    // The receiver's clock, so tests can age entries without waiting a week.
    this.#clock = clock
    this.#grow(Math.min(FIRST_CAPACITY, this.#maxEntries))
  }

  /** Ids remembered, expired ones not yet dropped included. */
  get size (): number {
    return this.#live
  }

  // What the last lookup found out when the id was not there at all, for the add()
  // that usually follows it: the receiver checks an id and then records it, and a
  // second hash and probe cost about as much as the first. Cleared by every add().
  #missedId: string | undefined
  #missedHash = 0

  /** True when the id was seen less than (or exactly) the retention window ago. Changes nothing. */
  has (id: string): boolean {
    return this.#liveEntry(id) !== NONE
  }

  /**
   * True when the id is remembered, as `has`; it then counts as seen now: its
   * window restarts and it becomes the last to be forgotten.
   */
  touch (id: string): boolean {
    return this.recall(id) !== undefined
  }

  /**
   * `touch`, returning the fingerprint recorded with the id (0 when none was)
   * where it is remembered, undefined where not.
   */
  recall (id: string): number | undefined {
    const entry = this.#liveEntry(id)
    if (entry === NONE) return undefined
    this.#seenAt[entry] = this.#clock()
    this.#moveToNewest(entry)
    return this.#fingerprints[entry] as number
  }

  /**
   * Remembers the id from now on, as the most recently seen, with the fingerprint
   * of its body where one is given (an id already remembered keeps its first one).
   */
  add (id: string, fingerprint = 0): void {
    // The lookup just before found no entry at all for this id: no hash or probe
    // again (dropping expired entries below cannot add one).
    const missed = id === this.#missedId
    this.#missedId = undefined
    const now = this.#clock()
    // Entries are in the order of #seenAt, so the expired ones are the oldest.
    while (this.#oldest !== NONE && now - (this.#seenAt[this.#oldest] as number) > this.#ttlMs) this.#drop(this.#oldest)
    const hash = missed ? this.#missedHash : hashOf(id)
    const slot = missed ? NONE : this.#find(id, hash)
    if (slot !== NONE) {
      const entry = (this.#index[slot] as number) - 1
      this.#seenAt[entry] = now
      this.#moveToNewest(entry)
      return
    }
    if (this.#live === this.#maxEntries) this.#drop(this.#oldest)
    const entry = this.#allocate()
    this.#seenAt[entry] = now
    this.#hashes[entry] = hash
    this.#lengths[entry] = id.length
    this.#fingerprints[entry] = fingerprint
    if (!this.#storeBytes(entry, id)) this.#spilled.set(entry, id)
    this.#linkAsNewest(entry)
    this.#live += 1
    this.#insert(entry, hash)
  }

  #liveEntry (id: string): number {
    const hash = hashOf(id)
    const slot = this.#find(id, hash)
    if (slot === NONE) {
      this.#missedId = id
      this.#missedHash = hash
      return NONE
    }
    const entry = (this.#index[slot] as number) - 1
    return this.#clock() - (this.#seenAt[entry] as number) <= this.#ttlMs ? entry : NONE
  }

  /** The index slot holding this id, or NONE. */
  #find (id: string, hash: number): number {
    const index = this.#index
    const mask = this.#mask
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const value = index[slot] as number
      if (value === EMPTY) return NONE
      const entry = value - 1
      if (this.#hashes[entry] === hash && this.#matches(entry, id)) return slot
    }
  }

  #matches (entry: number, id: string): boolean {
    if (this.#lengths[entry] !== id.length) return false
    const spilled = this.#spilled.get(entry)
    if (spilled !== undefined) return spilled === id
    const bytes = this.#bytes
    const start = entry * SLOT_BYTES
    for (let i = 0; i < id.length; i++) {
      if (bytes[start + i] !== id.charCodeAt(i)) return false
    }
    return true
  }

  #storeBytes (entry: number, id: string): boolean {
    if (id.length > SLOT_BYTES) return false
    const start = entry * SLOT_BYTES
    for (let i = 0; i < id.length; i++) {
      const code = id.charCodeAt(i)
      if (code > 0xff) return false
      this.#bytes[start + i] = code
    }
    return true
  }

  #allocate (): number {
    if (this.#free !== NONE) {
      const entry = this.#free
      this.#free = this.#newer[entry] as number
      return entry
    }
    // Every handed-out entry is live here, and fewer than maxEntries are, so growing is allowed.
    if (this.#used === this.#capacity) this.#grow(Math.min(this.#capacity * 2, this.#maxEntries))
    return this.#used++
  }

  /** Forgets an entry: out of the index and the list, onto the free stack. */
  #drop (entry: number): void {
    const slot = this.#slotOf(entry)
    if (slot !== NONE) this.#removeSlot(slot)
    this.#unlink(entry)
    this.#spilled.delete(entry)
    this.#live -= 1
    this.#newer[entry] = this.#free
    this.#free = entry
  }

  #moveToNewest (entry: number): void {
    if (entry === this.#newest) return
    this.#unlink(entry)
    this.#linkAsNewest(entry)
  }

  #unlink (entry: number): void {
    const older = this.#older[entry] as number
    const newer = this.#newer[entry] as number
    if (older === NONE) this.#oldest = newer
    else this.#newer[older] = newer
    if (newer === NONE) this.#newest = older
    else this.#older[newer] = older
  }

  #linkAsNewest (entry: number): void {
    this.#older[entry] = this.#newest
    this.#newer[entry] = NONE
    if (this.#newest === NONE) this.#oldest = entry
    else this.#newer[this.#newest] = entry
    this.#newest = entry
  }

  #insert (entry: number, hash: number): void {
    let slot = hash & this.#mask
    while (this.#index[slot] !== EMPTY) slot = (slot + 1) & this.#mask
    this.#index[slot] = entry + 1
  }

  /** The index slot of a live entry; NONE cannot happen, but a bound beats a hang. */
  #slotOf (entry: number): number {
    let slot = (this.#hashes[entry] as number) & this.#mask
    for (let probes = 0; probes < this.#index.length; probes++, slot = (slot + 1) & this.#mask) {
      if (this.#index[slot] === entry + 1) return slot
      if (this.#index[slot] === EMPTY) return NONE
    }
    return NONE
  }

  /**
   * Empties an index slot and moves later entries of the same probe run back, so
   * lookups never need tombstones (deletion for linear probing, Knuth 6.4 R).
   */
  #removeSlot (slot: number): void {
    const index = this.#index
    const mask = this.#mask
    let hole = slot
    index[hole] = EMPTY
    for (let next = (hole + 1) & mask; index[next] !== EMPTY; next = (next + 1) & mask) {
      const home = (this.#hashes[(index[next] as number) - 1] as number) & mask
      // The entry at `next` may move into the hole unless its home lies cyclically in (hole, next].
      const staysPut = hole <= next ? hole < home && home <= next : hole < home || home <= next
      if (staysPut) continue
      index[hole] = index[next] as number
      index[next] = EMPTY
      hole = next
    }
  }

  /** Grows the entry arrays (entries keep their numbers) and rebuilds the index for the new size. */
  #grow (capacity: number): void {
    this.#seenAt = copied(new Float64Array(capacity), this.#seenAt)
    this.#older = copied(new Int32Array(capacity), this.#older)
    this.#newer = copied(new Int32Array(capacity), this.#newer)
    this.#hashes = copied(new Int32Array(capacity), this.#hashes)
    this.#lengths = copied(new Int32Array(capacity), this.#lengths)
    this.#fingerprints = copied(new Int32Array(capacity), this.#fingerprints)
    this.#bytes = copied(new Uint8Array(capacity * SLOT_BYTES), this.#bytes)
    this.#capacity = capacity
    let indexSize = 2
    while (indexSize < capacity * 2) indexSize *= 2
    this.#index = new Int32Array(indexSize)
    this.#mask = indexSize - 1
    for (let entry = this.#oldest; entry !== NONE; entry = this.#newer[entry] as number) {
      this.#insert(entry, this.#hashes[entry] as number)
    }
  }
}

function copied<T extends { set: (values: ArrayLike<number>) => void }> (into: T, from: ArrayLike<number>): T {
  into.set(from)
  return into
}

/** 32-bit FNV-1a over the UTF-16 code units. */
function hashOf (id: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < id.length; i++) hash = Math.imul(hash ^ id.charCodeAt(i), 0x01000193)
  // As an Int32Array stores it, so the stored and the computed hash compare equal.
  return hash | 0
}
