#!/usr/bin/env node
// A/B of two (or more) builds in ONE process, in alternating batches, so that the
// machine's load drifts the same way for every build: on a shared 2-core machine
// this resolves differences of a few percent that separate processes do not.
//
//   node --expose-gc bench/interleaved.js dist /tmp/before/dist [--size small|large] [--rounds 40] [--batch 2000]
//
// Each build gets its own receiver (its own dedupe store, queue and handler) and
// sees the same signed deliveries, ids fresh for it; a macrotask every 10
// deliveries (TURN=<n> in the environment for another number: a server under
// pipelining handles many requests per turn). Prints CPU µs per delivery per build
// (process CPU time, GC threads included) and the median of the per-round ratios.
import { execFileSync } from 'node:child_process'
import { createHmac, randomUUID } from 'node:crypto'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { eventTemplate } from './deliveries.js'
import { nodeOnServerCpu, tasksetAvailable } from './pinning.js'

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    size: { type: 'string', default: 'small' },
    rounds: { type: 'string', default: '40' },
    batch: { type: 'string', default: '2000' },
    child: { type: 'boolean', default: false }
  }
})

if (!flags.child) {
  // Pinned to CPU 1, away from the shell and whatever else runs on CPU 0.
  const args = ['--expose-gc', new URL(import.meta.url).pathname, '--child', ...process.argv.slice(2)]
  execFileSync(...nodeOnServerCpu(tasksetAvailable(), args), { stdio: 'inherit' })
  process.exit(0)
}

const dists = positionals.map((dist) => resolve(dist))
const rounds = Number(flags.rounds)
const batch = Number(flags.batch)
const TURN = Number(process.env.TURN ?? 10)
const secret = 'whsec_interleaved'
const silent = { child () { return silent }, debug () {}, info () {}, warn () {}, error () {} }

const builds = []
for (const dist of dists) {
  const { Webhooks } = await import(`${dist}/index.js`)
  const build = { dist, handled: 0, cpu: 0, count: 0, perRound: [] }
  build.webhooks = new Webhooks({ secret, logger: silent, maxQueueSize: 1_000_000 })
  build.webhooks.on('action.completed', async () => { build.handled++ })
  builds.push(build)
}

const warmup = 20000
const total = warmup + rounds * batch
// The HTTP benchmark's bodies (bench/deliveries.js): ~300 B, or ~8 KB holding a
// list of recipients, shaped like a real payload.
const { prefix, suffix } = eventTemplate(flags.size)
const timestamp = String(Math.floor(Date.now() / 1000))
const deliveries = []
for (let i = 0; i < total; i++) {
  const rawBody = Buffer.concat([prefix, Buffer.from(randomUUID().slice(0, 16)), suffix])
  const signature = 'sha256=' + createHmac('sha256', secret).update(timestamp + '.').update(rawBody).digest('hex')
  deliveries.push({ contentType: 'application/json', signature, timestamp, rawBody })
}

const turn = () => new Promise((resolve) => setImmediate(resolve))
async function run (build, from, to) {
  for (let i = from; i < to; i++) {
    const answer = build.webhooks.decide(deliveries[i])
    if (answer.status !== 200) throw new Error(`${build.dist}: status ${answer.status}`)
    if (i % TURN === TURN - 1) await turn()
  }
  while (build.handled < to) await turn()
}

for (const build of builds) await run(build, 0, warmup)
globalThis.gc()
for (let round = 0; round < rounds; round++) {
  const from = warmup + round * batch
  const order = round % 2 === 0 ? builds : [...builds].reverse()
  for (const build of order) {
    const before = process.cpuUsage()
    await run(build, from, from + batch)
    const used = process.cpuUsage(before)
    const micros = used.user + used.system
    build.cpu += micros
    build.count += batch
    build.perRound.push(micros / batch)
  }
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}
console.log(`interleaved: ${flags.size} bodies, ${rounds} rounds of ${batch} deliveries per build`)
for (const build of builds) {
  console.log(`  ${build.dist.padEnd(30)} cpu ${(build.cpu / build.count).toFixed(2)} µs per delivery (median of rounds ${median(build.perRound).toFixed(2)})`)
}
const [first, ...others] = builds
for (const other of others) {
  const ratios = other.perRound.map((value, round) => value / first.perRound[round])
  console.log(`  ${other.dist} / ${first.dist}: ${(other.cpu / first.cpu).toFixed(3)} overall, median per round ${median(ratios).toFixed(3)}`)
}
for (const build of builds) await build.webhooks.close()
