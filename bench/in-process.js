#!/usr/bin/env node
// The receiver's own cost per accepted delivery, without sockets or a framework:
// decide() + dispatch to a no-op handler, fresh ids, a macrotask every `--batch`
// deliveries (as a server turn with pipelining would). CPU time per delivery is what
// a loaded machine disturbs least, so this is the A/B tool for hot-path changes.
//
//   node bench/in-process.js dist /tmp/before/dist [--runs 6] [--size small|large] [--batch 10]
//       runs each build in its own child process (pinned to CPU 1 when taskset is
//       there), alternating A, B, B, A, ..., and prints every run and the medians.
//       A directory named `hand` stands for a hand-written receiver instead of a build.
//       `dist+dashboard` is that build with the operator dashboard mounted.
//   node bench/in-process.js dist --alloc [--size small]
//       bytes allocated per delivery (no GC during the count), and the objects
//       allocated per delivery by function (V8's sampling heap profiler at a
//       1-byte interval, so every allocation is a sample).
import { spawnSync } from 'node:child_process'
import { nodeOnServerCpu, tasksetAvailable } from './pinning.js'
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    runs: { type: 'string', default: '6' },
    size: { type: 'string', default: 'small' },
    batch: { type: 'string', default: '10' },
    count: { type: 'string', default: '40000' },
    alloc: { type: 'boolean', default: false },
    child: { type: 'boolean', default: false }
  }
})

const batch = Number(flags.batch)
const count = Number(flags.count)

// ---------------------------------------------------------------- parent: A/B runs

if (!flags.child) {
  const dists = positionals.length > 0 ? positionals : ['dist']
  const pinned = tasksetAvailable()
  const runChild = (dist, extraNodeFlags = [], extraArgs = []) => {
    const script = new URL(import.meta.url).pathname
    const nodeArgs = [...extraNodeFlags, '--expose-gc', script, '--child', resolve(dist), '--size', flags.size, '--batch', flags.batch, '--count', flags.count, ...extraArgs]
    const result = spawnSync(...nodeOnServerCpu(pinned, nodeArgs), { encoding: 'utf8' })
    if (result.status !== 0) throw new Error(`${dist}: exit ${result.status}\n${result.stderr}`)
    return result.stdout
  }
  if (flags.alloc) {
    for (const dist of dists) {
      // A young generation large enough that the counted batch runs without a GC.
      process.stdout.write(runChild(dist, ['--max-semi-space-size=256', '--min-semi-space-size=256'], ['--alloc']))
    }
    process.exit(0)
  }
  const runs = Number(flags.runs)
  const results = new Map(dists.map((dist) => [dist, []]))
  console.log(`in-process: ${flags.size} bodies, a macrotask every ${batch} deliveries, ${count} measured, ${pinned ? 'pinned to CPU 1' : 'not pinned'}`)
  for (let run = 0; run < runs; run++) {
    // A B, then B A: neither build always runs first after the other.
    const order = run % 2 === 0 ? dists : [...dists].reverse()
    for (const dist of order) {
      const measured = JSON.parse(runChild(dist))
      results.get(dist).push(measured)
      console.log(`  run ${run + 1}  ${dist.padEnd(28)} cpu ${measured.cpuUsPer.toFixed(2)} µs  wall ${measured.wallUsPer.toFixed(2)} µs  scavenges ${measured.scavenges}  full GCs ${measured.fullGcs}`)
    }
  }
  const median = (values) => {
    const sorted = [...values].sort((a, b) => a - b)
    const middle = sorted.length >> 1
    return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
  }
  for (const [dist, measured] of results) {
    console.log(`median  ${dist.padEnd(28)} cpu ${median(measured.map((m) => m.cpuUsPer)).toFixed(2)} µs per delivery (${measured.map((m) => m.cpuUsPer.toFixed(2)).join(' / ')})`)
  }
  process.exit(0)
}

// ---------------------------------------------------------------- child: one build

// `dist+dashboard`: the same build with the operator dashboard mounted on the
// receiver (sampling every 100 ms, 50 times its default), to show it costs the
// webhook route nothing.
const withDashboard = positionals[0].endsWith('+dashboard')
const dist = positionals[0].replace(/\+dashboard$/, '')
const secret = 'whsec_micro'
let handled = 0
// `hand` instead of a dist directory: what a hand-written receiver does (the
// benchmark's handVerify, JSON.parse, push to an array drained on the next turn).
const webhooks = dist.endsWith('/hand') ? handWritten() : await receiver(dist)

async function receiver (directory) {
  const { Webhooks } = await import(`${directory}/index.js`)
  const silent = { child () { return silent }, debug () {}, info () {}, warn () {}, error () {} }
  const built = new Webhooks({ secret, logger: silent, maxQueueSize: 1_000_000 })
  built.on('action.completed', async () => { handled++ })
  if (withDashboard) {
    const { dashboardHandler } = await import(`${directory}/dashboard/index.js`)
    dashboardHandler({ webhooks: built, basicAuth: { username: 'bench', password: 'bench-password-123' }, sampleIntervalMs: 100 })
  }
  return built
}

function handWritten () {
  const events = []
  const drain = () => {
    for (const event of events) if (event.id !== undefined) handled++
    events.length = 0
  }
  const ACCEPTED = { status: 200 }
  const REFUSED = { status: 401 }
  return {
    decide ({ signature, timestamp, rawBody }) {
      if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return REFUSED
      const expected = Buffer.from('sha256=' + createHmac('sha256', secret).update(timestamp + '.').update(rawBody).digest('hex'))
      const provided = Buffer.from(signature)
      if (provided.length !== expected.length || !timingSafeEqual(provided, expected)) return REFUSED
      if (events.push(JSON.parse(rawBody)) === 1) setImmediate(drain)
      return ACCEPTED
    },
    async close () {}
  }
}

const warmup = 20000
const total = warmup + count
const pad = flags.size === 'large' ? 'x'.repeat(8000) : 'x'.repeat(200)
const timestamp = String(Math.floor(Date.now() / 1000))
const deliveries = []
for (let i = 0; i < total; i++) {
  const rawBody = Buffer.from(JSON.stringify({ type: 'action.completed', createdAt: new Date().toISOString(), data: { actionId: 'a' + i, tokensDistributed: 50, pad }, id: randomUUID() }))
  const signature = 'sha256=' + createHmac('sha256', secret).update(timestamp + '.').update(rawBody).digest('hex')
  deliveries.push({ contentType: 'application/json', signature, timestamp, rawBody })
}

const turn = () => new Promise((resolve) => setImmediate(resolve))
async function run (from, to) {
  for (let i = from; i < to; i++) {
    const answer = webhooks.decide(deliveries[i])
    if (answer.status !== 200) throw new Error(`status ${answer.status}`)
    if (i % batch === batch - 1) await turn()
  }
  while (handled < to) await turn()
}

let scavenges = 0
let fullGcs = 0
const { PerformanceObserver, constants } = await import('node:perf_hooks')
const observer = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    if (entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) scavenges++
    else fullGcs++
  }
})

await run(0, warmup)

if (flags.alloc) {
  const v8 = await import('node:v8')
  const inspector = await import('node:inspector/promises')
  const measured = 2000
  // Bytes: with a 256 MiB young generation and a GC just before, the batch runs
  // without a collection, so the heap grows by exactly what it allocated.
  observer.observe({ entryTypes: ['gc'] })
  globalThis.gc()
  await turn()
  scavenges = 0
  fullGcs = 0
  const before = v8.getHeapStatistics().used_heap_size
  await run(warmup, warmup + measured)
  const after = v8.getHeapStatistics().used_heap_size
  await turn()
  const gcs = scavenges + fullGcs
  // Objects: every allocation of the next batch, by the function that made it.
  const session = new inspector.Session()
  session.connect()
  await session.post('HeapProfiler.startSampling', { samplingInterval: 1, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true })
  await run(warmup + measured, warmup + 2 * measured)
  const { profile } = await session.post('HeapProfiler.stopSampling')
  session.disconnect()
  const sites = new Map()
  const frames = new Map()
  const walk = (node, path) => {
    const frame = node.callFrame
    const where = `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*\/(dist|node_modules)\//, '$1/').replace(/^file:\/\//, '')}:${frame.lineNumber + 1}`
    frames.set(node.id, where)
    for (const child of node.children) walk(child, path)
  }
  walk(profile.head, '')
  let objects = 0
  for (const sample of profile.samples) {
    objects++
    const where = frames.get(sample.nodeId) ?? '?'
    const site = sites.get(where) ?? { objects: 0, bytes: 0 }
    site.objects++
    site.bytes += sample.size
    sites.set(where, site)
  }
  console.log(`${dist} (${flags.size} bodies): ${((after - before) / measured).toFixed(0)} bytes allocated per delivery${gcs > 0 ? ` (${gcs} GCs during the count: an underestimate)` : ''}; ` +
    `${(objects / measured).toFixed(1)} heap objects per delivery`)
  for (const [where, site] of [...sites].sort((a, b) => b[1].objects - a[1].objects).slice(0, 25)) {
    console.log(`  ${(site.objects / measured).toFixed(2).padStart(6)} objects  ${(site.bytes / measured).toFixed(0).padStart(6)} B  ${where}`)
  }
  await webhooks.close()
  process.exit(0)
}

// The deliveries and the warm-up's garbage are settled first, so a full collection
// of the set-up's heap does not land in one build's measured window by chance.
globalThis.gc()
await turn()
observer.observe({ entryTypes: ['gc'] })
scavenges = 0
fullGcs = 0
const cpu = process.cpuUsage()
const startedAt = process.hrtime.bigint()
await run(warmup, total)
const used = process.cpuUsage(cpu)
const wall = Number(process.hrtime.bigint() - startedAt) / 1e3
await turn()
observer.disconnect()
console.log(JSON.stringify({ dist, cpuUsPer: (used.user + used.system) / count, wallUsPer: wall / count, scavenges, fullGcs }))
await webhooks.close()
