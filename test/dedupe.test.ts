import fc from 'fast-check'
import t from 'tap'
import { SeenIds } from '../src/core/dedupe.js'

/**
 * What the store must behave like, written the obvious way: ids in the order they
 * were last seen (added, or touched while remembered), the expired ones and then
 * the least recently seen dropped first. An id is remembered for `ttlMs` inclusive
 * after it was last seen.
 */
class ReferenceIds {
  readonly #entries: Array<{ id: string, at: number }> = []
  constructor (readonly maxEntries: number, readonly ttlMs: number) {}

  has (id: string, now: number): boolean {
    const entry = this.#entries.find((candidate) => candidate.id === id)
    return entry !== undefined && now - entry.at <= this.ttlMs
  }

  touch (id: string, now: number): boolean {
    if (!this.has(id, now)) return false
    const index = this.#entries.findIndex((candidate) => candidate.id === id)
    this.#entries.splice(index, 1)
    this.#entries.push({ id, at: now })
    return true
  }

  add (id: string, now: number): void {
    const existing = this.#entries.findIndex((candidate) => candidate.id === id)
    if (existing !== -1) this.#entries.splice(existing, 1)
    while (this.#entries.length > 0 && now - (this.#entries[0] as { at: number }).at > this.ttlMs) this.#entries.shift()
    if (this.#entries.length === this.maxEntries) this.#entries.shift()
    this.#entries.push({ id, at: now })
  }
}

// Short ASCII ids (kept as bytes), ids past the 64-byte slot and ids with
// characters above U+00FF (both kept as strings), from a small pool so that
// repeats, hash collisions within a probe run and evictions all happen.
const anyId = fc.oneof(
  fc.constantFrom('evt_a', 'evt_b', 'evt_c', 'evt_d', 'evt_e', 'evt_f', 'x', 'é'),
  fc.constantFrom('evt_' + 'l'.repeat(70), 'evt_' + 'm'.repeat(64), 'evt_€', 'evt_\u{1F600}'),
  fc.string({ minLength: 1, maxLength: 3, unit: fc.constantFrom('a', 'b', 'c') })
)
const anyStep = fc.oneof(
  fc.record({ op: fc.constant('add' as const), id: anyId, advanceMs: fc.integer({ min: 0, max: 40 }) }),
  fc.record({ op: fc.constant('has' as const), id: anyId, advanceMs: fc.integer({ min: 0, max: 40 }) }),
  fc.record({ op: fc.constant('touch' as const), id: anyId, advanceMs: fc.integer({ min: 0, max: 40 }) })
)

t.test('answers as the reference store does, over any sequence of adds, lookups, touches and clock steps', async () => {
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 100 }), fc.array(anyStep, { maxLength: 120 }),
    (maxEntries, ttlMs, steps) => {
      let now = 1_000_000
      const store = new SeenIds({ maxEntries, ttlSeconds: ttlMs / 1000 }, () => now)
      const reference = new ReferenceIds(maxEntries, ttlMs)
      for (const step of steps) {
        now += step.advanceMs
        if (step.op === 'add') {
          store.add(step.id)
          reference.add(step.id, now)
        } else if (step.op === 'touch') {
          if (store.touch(step.id) !== reference.touch(step.id, now)) return false
        } else if (store.has(step.id) !== reference.has(step.id, now)) {
          return false
        }
      }
      return true
    }
  ), { numRuns: 2000 })
})

t.test('grows past its first allocation and then holds exactly maxEntries ids', async (t) => {
  const store = new SeenIds({ maxEntries: 5000, ttlSeconds: 3600 }, () => 0)
  for (let i = 0; i < 6000; i++) store.add(`evt_${i}`)
  t.equal(store.size, 5000)
  t.notOk(store.has('evt_0'), 'the oldest thousand are forgotten')
  t.notOk(store.has('evt_999'))
  t.ok(store.has('evt_1000'), 'the newest 5000 are remembered')
  t.ok(store.has('evt_5999'))
})

t.test('forgets expired ids as new ones arrive, so old entries do not crowd out new ones', async (t) => {
  let now = 0
  const store = new SeenIds({ maxEntries: 3, ttlSeconds: 10 }, () => now)
  store.add('evt_a')
  store.add('evt_b')
  now = 10_000
  t.ok(store.has('evt_a'), 'remembered for exactly the retention window')
  now = 10_001
  t.notOk(store.has('evt_a'), 'and not a millisecond longer')
  store.add('evt_c')
  t.equal(store.size, 1, 'both expired ids were dropped when evt_c arrived')
  store.add('evt_d')
  store.add('evt_e')
  t.ok(store.has('evt_c') && store.has('evt_d') && store.has('evt_e'))
})

t.test('an expired id added again is remembered from the new time', async (t) => {
  let now = 0
  const store = new SeenIds({ maxEntries: 10, ttlSeconds: 1 }, () => now)
  store.add('evt_a')
  now = 5000
  t.notOk(store.has('evt_a'))
  store.add('evt_a')
  now = 5500
  t.ok(store.has('evt_a'))
})

t.test('touches, adds and evictions across the growth of the entry arrays agree with the reference', async (t) => {
  // Past the first allocation (1024 entries) twice, with repeats, so entries are
  // moved, freed and reused while the arrays grow and the index is rebuilt.
  fc.assert(fc.property(fc.array(fc.tuple(fc.nat({ max: 3999 }), fc.boolean()), { minLength: 6000, maxLength: 6000 }), (steps) => {
    let now = 0
    const store = new SeenIds({ maxEntries: 3000, ttlSeconds: 3600 }, () => now)
    const reference = new ReferenceIds(3000, 3_600_000)
    for (const [number, touchFirst] of steps) {
      now += 1
      const id = `evt_${number}`
      const seen = touchFirst ? store.touch(id) : store.has(id)
      if (seen !== (touchFirst ? reference.touch(id, now) : reference.has(id, now))) return false
      if (!seen) {
        store.add(id)
        reference.add(id, now)
      }
    }
    return store.size === Math.min(3000, new Set(steps.map(([number]) => number)).size)
  }), { numRuns: 5 })
  t.pass('agreed')
})

t.test('a touched id outlives ids added after it, up to maxEntries', async (t) => {
  const store = new SeenIds({ maxEntries: 2, ttlSeconds: 3600 }, () => 0)
  store.add('evt_a')
  store.add('evt_b')
  t.ok(store.touch('evt_a'), 'a hit')
  t.notOk(store.touch('evt_c'), 'a miss changes nothing')
  store.add('evt_c')
  t.ok(store.has('evt_a'), 'A, seen most recently before C, is kept')
  t.notOk(store.has('evt_b'), 'B, the least recently seen, went first')
  t.equal(store.size, 2)
})
