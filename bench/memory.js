// Memory under a flood, run by bench/run.js in a child process of its own
// (node --expose-gc bench/memory.js flood|dedupe [--smoke]). Deliveries go straight
// to the framework-free core, so what is measured is the receiver's own memory,
// not a web framework's. Prints readable lines, then one JSON line for run.js.
import { pino } from 'pino'
import { SeenIds } from '../dist/core/dedupe.js'
import { Webhooks } from '../dist/index.js'
import { DeliverySource, SECRET } from './deliveries.js'

const [mode] = process.argv.slice(2)
const smoke = process.argv.includes('--smoke')
const MiB = 1048576

function sample (label, extra = {}) {
  globalThis.gc?.()
  const memory = process.memoryUsage()
  return { label, rssMiB: memory.rss / MiB, heapUsedMiB: memory.heapUsed / MiB, externalMiB: memory.external / MiB, ...extra }
}

const turn = () => new Promise((resolve) => setImmediate(resolve))

function deliveryOf (source) {
  const { id, body, headers } = source.next()
  return { id, delivery: { contentType: headers['content-type'], signature: headers['x-sir-signature'], timestamp: headers['x-sir-timestamp'], rawBody: body } }
}

function print (title, samples) {
  console.log(title)
  for (const row of samples) {
    console.log(`  ${String(row.label).padStart(9)}  rss ${row.rssMiB.toFixed(1).padStart(7)} MiB  heap ${row.heapUsedMiB.toFixed(1).padStart(7)} MiB` +
      (row.accepted === undefined ? '' : `  accepted ${row.accepted}  503 ${row.refused}`) +
      (row.queued === undefined ? '' : `  queued ${row.queued}`))
  }
}

/**
 * A stopped handler (it never settles) and a bounded queue: past the bound every
 * delivery must get 503 and memory must stop growing.
 */
async function flood () {
  const total = smoke ? 1_000 : 100_000
  const maxQueueSize = smoke ? 300 : 10_000
  const step = total / 10
  const webhooks = new Webhooks({ secret: SECRET, maxQueueSize, logger: pino({ level: 'silent' }) })
  webhooks.onAny(() => new Promise(() => {}))
  const source = new DeliverySource('sir', 'large')
  const counts = { 200: 0, 503: 0, other: 0 }
  const samples = [sample('start', { accepted: 0, refused: 0 })]
  for (let sent = 1; sent <= total; sent++) {
    const { delivery } = deliveryOf(source)
    const answer = await webhooks.receive(delivery)
    if (answer.status === 200 || answer.status === 503) counts[answer.status] += 1
    else counts.other += 1
    if (sent % step === 0) {
      await turn()
      source.refresh()
      samples.push(sample(sent, { accepted: counts[200], refused: counts[503], queued: webhooks.inbox.size }))
    }
  }
  print(`\n## Memory: ${total} deliveries (~8 KB bodies) into a handler that never finishes, maxQueueSize ${maxQueueSize}`, samples)
  const failures = []
  if (counts[200] !== maxQueueSize) failures.push(`expected exactly ${maxQueueSize} accepted, got ${counts[200]}`)
  if (counts[503] !== total - maxQueueSize) failures.push(`expected ${total - maxQueueSize} answers 503, got ${counts[503]}`)
  if (counts.other !== 0) failures.push(`${counts.other} answers neither 200 nor 503`)
  // Once the queue is full only refusals happen: the heap must be flat from there.
  const plateauFrom = samples.find((row) => row.refused > 0) ?? samples.at(-1)
  const last = samples.at(-1)
  const heapGrowth = last.heapUsedMiB - plateauFrom.heapUsedMiB
  const rssGrowth = last.rssMiB - plateauFrom.rssMiB
  if (heapGrowth > 4) failures.push(`heap grew ${heapGrowth.toFixed(1)} MiB after the queue was full`)
  console.log(`  after the bound (from ${plateauFrom.label} to ${last.label}): heap ${heapGrowth >= 0 ? '+' : ''}${heapGrowth.toFixed(1)} MiB, rss ${rssGrowth >= 0 ? '+' : ''}${rssGrowth.toFixed(1)} MiB`)
  return { mode: 'flood', total, maxQueueSize, counts, samples, heapGrowthMiB: heapGrowth, rssGrowthMiB: rssGrowth, failures }
}

/**
 * What one remembered id costs: a store filled to `maxEntries` with ids shaped as
 * the benchmark's (16 ASCII characters), measured as the typed arrays it holds
 * (off the JS heap) and the heap it adds.
 */
async function dedupePerId (maxEntries) {
  globalThis.gc?.()
  const before = process.memoryUsage()
  const seen = new SeenIds({ maxEntries, ttlSeconds: 7 * 24 * 3600 }, Date.now)
  for (let i = 0; i < maxEntries; i++) seen.add(`evt_${i.toString(36).padStart(12, '0')}`)
  // The arrays the store outgrew are released by V8 after a collection, not in it.
  for (let i = 0; i < 3; i++) {
    globalThis.gc?.()
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const after = process.memoryUsage()
  const perId = {
    ids: seen.size,
    arrayBufferBytesPerId: (after.arrayBuffers - before.arrayBuffers) / maxEntries,
    heapBytesPerId: (after.heapUsed - before.heapUsed) / maxEntries
  }
  console.log(`\n## Dedupe memory: ${seen.size} remembered ids of 16 characters: ${perId.arrayBufferBytesPerId.toFixed(1)} bytes per id in typed arrays, ` +
    `${perId.heapBytesPerId.toFixed(1)} bytes per id on the JS heap`)
  return perId
}

/**
 * A million distinct ids through a no-op handler: the dedupe cache must stop at
 * `dedupe.maxEntries`, forgetting the oldest ids and keeping the newest, and the
 * process's memory (RSS, not only the heap) must stay flat once it is full.
 */
async function dedupe () {
  const perId = await dedupePerId(smoke ? 1_000 : 100_000)
  const total = smoke ? 5_000 : 1_000_000
  const maxEntries = smoke ? 1_000 : 100_000
  const step = total / 10
  const webhooks = new Webhooks({ secret: SECRET, dedupe: { maxEntries }, logger: pino({ level: 'silent' }) })
  webhooks.onAny(async () => {})
  const source = new DeliverySource('sir', 'small')
  const counts = { 200: 0, other: 0 }
  const samples = [sample('start', { accepted: 0, refused: 0 })]
  let first
  let last
  for (let sent = 1; sent <= total; sent++) {
    const { delivery } = deliveryOf(source)
    if (sent === 1) first = delivery
    last = delivery
    const answer = await webhooks.receive(delivery)
    if (answer.code === 'ACCEPTED') counts[200] += 1
    else counts.other += 1
    // Handlers start on setImmediate: yield now and then so the queue drains as in a server.
    if (sent % 500 === 0) await turn()
    if (sent % step === 0) {
      while (webhooks.inbox.size > 0) await turn()
      source.refresh()
      samples.push(sample(sent, { accepted: counts[200], refused: counts.other, queued: webhooks.inbox.size }))
    }
  }
  // Sent again as they were, signatures and timestamps included: the run is far
  // shorter than the 300-second window, so only dedupe decides their fate.
  const firstAgain = await webhooks.receive(first)
  const lastAgain = await webhooks.receive(last)
  print(`\n## Memory: ${total} distinct event ids (~300 B bodies), no-op handler, dedupe.maxEntries ${maxEntries}`, samples)
  console.log(`  the first id sent again: ${firstAgain.code} (evicted); the last id sent again: ${lastAgain.code} (remembered)`)
  const failures = []
  if (counts[200] !== total) failures.push(`expected ${total} accepted, got ${counts[200]} (${counts.other} other answers)`)
  if (firstAgain.code !== 'ACCEPTED') failures.push(`the first id was still remembered (${firstAgain.code}): the cache is not bounded`)
  if (lastAgain.code !== 'DUPLICATE') failures.push(`the last id was forgotten (${lastAgain.code})`)
  // From the first sample after the cache filled up.
  const plateauFrom = samples.find((row) => typeof row.label === 'number' && row.label > maxEntries) ?? samples.at(-1)
  const end = samples.at(-1)
  const heapGrowth = end.heapUsedMiB - plateauFrom.heapUsedMiB
  const rssGrowth = end.rssMiB - plateauFrom.rssMiB
  if (!smoke && heapGrowth > 8) failures.push(`heap grew ${heapGrowth.toFixed(1)} MiB once the cache was full`)
  // RSS moves with the allocator's pages as well as with objects kept: a bound that
  // a leak of 1 000 000 events (≥ 16 bytes each) would cross, allocator noise not.
  if (!smoke && rssGrowth > 16) failures.push(`RSS grew ${rssGrowth.toFixed(1)} MiB once the cache was full`)
  console.log(`  once full (from ${plateauFrom.label} to ${end.label}): heap ${heapGrowth >= 0 ? '+' : ''}${heapGrowth.toFixed(1)} MiB, rss ${rssGrowth >= 0 ? '+' : ''}${rssGrowth.toFixed(1)} MiB`)
  await webhooks.close()
  return { mode: 'dedupe', total, maxEntries, counts, samples, heapGrowthMiB: heapGrowth, rssGrowthMiB: rssGrowth, perId, failures }
}

const started = Date.now()
let result
if (mode === 'flood') result = await flood()
else if (mode === 'dedupe') result = await dedupe()
else {
  console.error('usage: node --expose-gc bench/memory.js flood|dedupe [--smoke]')
  process.exit(2)
}
result.seconds = (Date.now() - started) / 1000
console.log(JSON.stringify(result))
// The flood leaves handlers that never settle: nothing else would end the process.
process.exit(0)
