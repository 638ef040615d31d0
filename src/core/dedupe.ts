import type { DedupeOptions } from './options.js'

// An id of up to this many characters, all at or below U+00FF, is kept as bytes in
// the entry's slot; any other id is kept as a string beside it.
const SLOT_BYTES = 64
const FIRST_CAPACITY = 1024
const EMPTY = 0

/**
 * Remembers event ids for a retention window. Bounded twice: by time (TTL) and
 * by count (the oldest id is forgotten first), so a flood of distinct ids cannot
 * grow memory without end.
 *
 * Why not a `Map` or lru-cache: each remembered id was a string kept alive on the
 * JS heap, and with 100 000 of them the garbage collector's work made dedupe the
 * largest cost of an accepted delivery in the benchmark (see docs/performance.md).
 * Here the ids live in typed arrays: a ring of entries in arrival order and an
 * open-addressing index over it, which the collector never has to trace.
 *
 * The hash is not keyed: an id reaches this store only after its delivery's
 * signature verified, so only the platform chooses ids.
 */
export class SeenIds {
  readonly #maxEntries: number
  readonly #ttlMs: number
  readonly #clock: () => number

  // The ring: entries in arrival order, the oldest at #head, #count in use, #live
  // of them remembered. The others were replaced by a later add of the same id and
  // are skipped when they come up for eviction.
  #capacity = 0
  #head = 0
  #count = 0
  #live = 0
  #addedAt = new Float64Array(0)
  #hashes = new Int32Array(0)
  #lengths = new Int32Array(0)
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
    this.#resize(Math.min(FIRST_CAPACITY, this.#maxEntries))
  }

  /** Ids remembered, expired ones not yet dropped included. */
  get size (): number {
    return this.#live
  }

  // What the last has() found out, for the add() that usually follows it: the
  // receiver checks an id and then records it, and the second hash and probe cost
  // about as much as the first. Cleared by every add().
  #checkedId: string | undefined
  #checkedHash = 0

  /** True when the id was added less than (or exactly) the retention window ago. */
  has (id: string): boolean {
    const hash = hashOf(id)
    const slot = this.#find(id, hash)
    if (slot === -1) {
      this.#checkedId = id
      this.#checkedHash = hash
      return false
    }
    const entry = (this.#index[slot] as number) - 1
    return this.#clock() - (this.#addedAt[entry] as number) <= this.#ttlMs
  }

  /** Remembers the id from now on; an expired entry for it is replaced. */
  add (id: string): void {
    // has() just found no entry at all for this id: no hash or probe again.
    const checked = id === this.#checkedId
    this.#checkedId = undefined
    const hash = checked ? this.#checkedHash : hashOf(id)
    const now = this.#clock()
    const existing = checked ? -1 : this.#find(id, hash)
    if (existing !== -1) this.#forget(existing)
    // Entries arrive in clock order, so the expired ones are at the head.
    while (this.#count > 0 && now - (this.#addedAt[this.#head] as number) > this.#ttlMs) this.#dropOldest()
    if (this.#live === this.#maxEntries) {
      while (this.#lengths[this.#head] === -1) this.#dropOldest()
      this.#dropOldest()
    }
    // Full ring: grow it up to maxEntries, or at maxEntries close the gaps that
    // replaced entries left (only an id added again while still remembered leaves
    // one; the receiver adds an id only when it is new or expired).
    if (this.#count === this.#capacity) this.#resize(Math.min(this.#capacity * 2, this.#maxEntries))

    const entry = (this.#head + this.#count) % this.#capacity
    this.#count += 1
    this.#live += 1
    this.#addedAt[entry] = now
    this.#hashes[entry] = hash
    this.#lengths[entry] = id.length
    if (!this.#storeBytes(entry, id)) this.#spilled.set(entry, id)
    let slot = hash & this.#mask
    while (this.#index[slot] !== EMPTY) slot = (slot + 1) & this.#mask
    this.#index[slot] = entry + 1
  }

  /** The index slot holding this id, or -1. */
  #find (id: string, hash: number): number {
    const index = this.#index
    const mask = this.#mask
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const value = index[slot] as number
      if (value === EMPTY) return -1
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

  #dropOldest (): void {
    const entry = this.#head
    // A replaced entry (#forget) is no longer in the index.
    if (this.#lengths[entry] !== -1) {
      const slot = this.#slotOf(entry)
      if (slot !== -1) this.#removeSlot(slot)
      this.#live -= 1
    }
    this.#spilled.delete(entry)
    this.#head = (this.#head + 1) % this.#capacity
    this.#count -= 1
  }

  /** Takes an entry out of the index; its place in the ring is dropped in turn. */
  #forget (slot: number): void {
    const entry = (this.#index[slot] as number) - 1
    this.#removeSlot(slot)
    this.#lengths[entry] = -1
    this.#spilled.delete(entry)
    this.#live -= 1
  }

  /** The index slot of a live entry; -1 cannot happen, but a bound beats a hang. */
  #slotOf (entry: number): number {
    let slot = (this.#hashes[entry] as number) & this.#mask
    for (let probes = 0; probes < this.#index.length; probes++, slot = (slot + 1) & this.#mask) {
      if (this.#index[slot] === entry + 1) return slot
      if (this.#index[slot] === EMPTY) return -1
    }
    return -1
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

  /** Grows the ring (oldest entry first at 0) and rebuilds the index for it. */
  #resize (capacity: number): void {
    const addedAt = new Float64Array(capacity)
    const hashes = new Int32Array(capacity)
    const lengths = new Int32Array(capacity)
    const bytes = new Uint8Array(capacity * SLOT_BYTES)
    const spilled = new Map<number, string>()
    let indexSize = 2
    while (indexSize < capacity * 2) indexSize *= 2
    const index = new Int32Array(indexSize)
    const mask = indexSize - 1
    let count = 0
    for (let i = 0; i < this.#count; i++) {
      const from = (this.#head + i) % this.#capacity
      if (this.#lengths[from] === -1) continue
      addedAt[count] = this.#addedAt[from] as number
      hashes[count] = this.#hashes[from] as number
      lengths[count] = this.#lengths[from] as number
      bytes.set(this.#bytes.subarray(from * SLOT_BYTES, (from + 1) * SLOT_BYTES), count * SLOT_BYTES)
      const spill = this.#spilled.get(from)
      if (spill !== undefined) spilled.set(count, spill)
      let slot = (hashes[count] as number) & mask
      while (index[slot] !== EMPTY) slot = (slot + 1) & mask
      index[slot] = count + 1
      count += 1
    }
    this.#capacity = capacity
    this.#head = 0
    this.#count = count
    this.#live = count
    this.#addedAt = addedAt
    this.#hashes = hashes
    this.#lengths = lengths
    this.#bytes = bytes
    this.#spilled = spilled
    this.#index = index
    this.#mask = mask
  }
}

/** 32-bit FNV-1a over the UTF-16 code units. */
function hashOf (id: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < id.length; i++) hash = Math.imul(hash ^ id.charCodeAt(i), 0x01000193)
  // As an Int32Array stores it, so the stored and the computed hash compare equal.
  return hash | 0
}
