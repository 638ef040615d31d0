// A micro-benchmark of the in-memory dedupe store alone (src/core/dedupe.ts), as the
// memory inbox drives it: look an id up, and remember it when it is new.
//   npm run build && node bench/dedupe.js [--smoke] [--compare=path/to/another/dedupe.js]
// --compare runs another build of the store (an older commit's, say) too, the two
// taking turns run by run, so that a busy machine's drift weighs on both alike.
// Three workloads on a full store (maxEntries 100 000, the default): all ids new;
// 10% repeats of a recent id (the sender's quick retry); 10% repeats of an id
// anywhere in the store (a late duplicate). Prints ns per delivery, the median of 7 runs.
import { pathToFileURL } from 'node:url'

const compareFlag = process.argv.find((arg) => arg.startsWith('--compare='))
const stores = [{ name: 'dist', SeenIds: (await import('../dist/core/dedupe.js')).SeenIds }]
if (compareFlag !== undefined) {
  const path = compareFlag.slice('--compare='.length)
  stores.push({ name: path, SeenIds: (await import(pathToFileURL(path).href)).SeenIds })
}

const smoke = process.argv.includes('--smoke')
const MAX_ENTRIES = 100_000
const OPERATIONS = smoke ? 50_000 : 1_000_000
const RUNS = smoke ? 1 : 7

function makeIds (count, prefix) {
  const ids = new Array(count)
  for (let i = 0; i < count; i++) ids[i] = `${prefix}${i.toString(16).padStart(24, '0')}`
  return ids
}

/** The ids of one run, fixed beforehand so that making strings is not measured. */
function workload (kind) {
  const fresh = makeIds(OPERATIONS, 'evt_')
  if (kind === 'all new') return fresh
  const sequence = new Array(OPERATIONS)
  let state = 0x2545f491
  let next = 0
  for (let i = 0; i < OPERATIONS; i++) {
    state ^= state << 13; state ^= state >>> 17; state ^= state << 5
    const roll = (state >>> 0) % 100
    if (roll < 10 && next > 1000) {
      const back = kind === 'recent repeats' ? 1 + ((state >>> 8) % 1000) : 1 + ((state >>> 8) % (MAX_ENTRIES - 1))
      sequence[i] = fresh[Math.max(0, next - back)]
    } else {
      sequence[i] = fresh[next++]
    }
  }
  return sequence
}

function run (SeenIds, ids) {
  const store = new SeenIds({ maxEntries: MAX_ENTRIES, ttlSeconds: 604_800 }, () => 0)
  // Fill it first: the steady state of a busy receiver is a full store.
  for (const id of makeIds(MAX_ENTRIES, 'old_')) store.add(id)
  // The lookup the memory inbox makes: touch() where the store has it (a hit counts as seen), else has().
  const seen = typeof store.touch === 'function' ? (id) => store.touch(id) : (id) => store.has(id)
  let duplicates = 0
  const started = process.hrtime.bigint()
  for (const id of ids) {
    if (seen(id)) duplicates += 1
    else store.add(id)
  }
  const elapsed = Number(process.hrtime.bigint() - started)
  return { nsPerOp: elapsed / ids.length, duplicates }
}

for (const kind of ['all new', 'recent repeats', 'repeats anywhere']) {
  const ids = workload(kind)
  for (const { SeenIds } of stores) run(SeenIds, ids.slice(0, Math.min(ids.length, 100_000)))   // warm-up
  const results = stores.map(() => [])
  for (let i = 0; i < RUNS; i++) stores.forEach(({ SeenIds }, s) => { results[s].push(run(SeenIds, ids)) })
  stores.forEach(({ name }, s) => {
    const sorted = results[s].map((r) => r.nsPerOp).sort((a, b) => a - b)
    const median = sorted[Math.floor(sorted.length / 2)]
    console.log(`${kind.padEnd(16)} ${median.toFixed(1).padStart(7)} ns/delivery (min ${sorted[0].toFixed(1)}, max ${sorted.at(-1).toFixed(1)})  duplicates ${results[s][0].duplicates}  ${name}`)
  })
}
