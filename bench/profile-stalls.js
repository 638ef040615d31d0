#!/usr/bin/env node
// The event-loop stalls in a V8 .cpuprofile (SIR_BENCH_CPU_PROF=<dir> on
// bench/burst.js or bench/ordering.js): each stretch of samples with no idle
// between them that lasted at least --min ms, longest first, with the functions
// that took its time (self time) and the deepest frames of our code under which
// it ran. A p99 made by a few long stalls is read here, not in the averages that
// bench/profile-summary.js prints.
// Usage: node bench/profile-stalls.js <file.cpuprofile> [--min 20] [--top 5] [--in-order]
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

const { values: flags, positionals } = parseArgs({ allowPositionals: true, options: { min: { type: 'string', default: '20' }, top: { type: 'string', default: '5' }, 'in-order': { type: 'boolean', default: false } } })
const file = positionals[0]
if (file === undefined) {
  console.error('usage: node bench/profile-stalls.js <file.cpuprofile> [--min 20] [--top 5]')
  process.exit(2)
}
const profile = JSON.parse(readFileSync(file, 'utf8'))
const byId = new Map(profile.nodes.map((node) => [node.id, node]))
const parentOf = new Map()
for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id)

const name = (node) => {
  const frame = node.callFrame
  const url = frame.url.replace(/^file:\/\//, '').replace(/^.*\/(dist|node_modules)\//, '$1/')
  return `${frame.functionName || '(anonymous)'} ${url}${url ? `:${frame.lineNumber + 1}` : ''}`
}
const isIdle = (node) => node.callFrame.functionName === '(idle)'
/** The innermost frame of ours (dist/) on the sample's stack: what of the library was running. */
const oursOf = (id) => {
  for (let at = id; at !== undefined; at = parentOf.get(at)) {
    const node = byId.get(at)
    if (node.callFrame.url.includes('/dist/')) return name(node)
  }
  return '(none of ours)'
}

const stalls = []
let current
let elapsed = 0
for (let index = 0; index < profile.samples.length; index++) {
  const node = byId.get(profile.samples[index])
  const ms = (profile.timeDeltas[index + 1] ?? 0) / 1000
  elapsed += ms
  if (isIdle(node)) {
    if (current !== undefined && current.ms >= Number(flags.min)) stalls.push(current)
    current = undefined
    continue
  }
  current ??= { ms: 0, self: new Map(), ours: new Map(), at: elapsed }
  current.ms += ms
  current.self.set(name(node), (current.self.get(name(node)) ?? 0) + ms)
  const ours = oursOf(node.id)
  current.ours.set(ours, (current.ours.get(ours) ?? 0) + ms)
}
if (current !== undefined && current.ms >= Number(flags.min)) stalls.push(current)

const top = (map) => [...map].sort((a, b) => b[1] - a[1]).slice(0, Number(flags.top)).map(([what, ms]) => `    ${ms.toFixed(1).padStart(7)} ms  ${what}`).join('\n')
// --in-order: by when they began (ms from the profile's start), to find what a start-up or a load's first second costs.
if (!flags['in-order']) stalls.sort((a, b) => b.ms - a.ms)
console.log(`${file}: ${stalls.length} stall(s) of ${flags.min} ms or more`)
for (const stall of stalls.slice(0, 10)) {
  console.log(`\nstall of ${stall.ms.toFixed(1)} ms at ${(stall.at / 1000).toFixed(2)} s\n  self time:\n${top(stall.self)}\n  under our frames:\n${top(stall.ours)}`)
}
