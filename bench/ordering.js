#!/usr/bin/env node
// Ordering's cost (issue 23): `npm run bench:ordering`, after a build. For each
// store, a receiver with every option at its default is filled with --events
// deliveries (50 connections, a fresh id each, no handler registered yet); then a
// no-op handler is registered and the backlog's drain is timed, first run's start
// to last run's end. Three modes, alternating within each round so that both
// see the same machine: ordering off, ordering over --keys keys (a hash of the
// event id), and one hot key (every event on one key: per-key serial throughput).
// Receivers on CPU 1, load on CPU 0, stores unpinned. Figures: docs/performance.md
// ("Ordering").
import { spawn } from 'node:child_process'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { DeliverySource, PATH, SECRET, freshDeliveries } from './deliveries.js'
import { nodeOnServerCpu } from './pinning.js'
import { ask, pinned, readyOf, stopReceiver, stopStores, storeFor } from './stores.js'

const { values: flags } = parseArgs({
  options: {
    inboxes: { type: 'string', default: 'sqlite,postgres' },
    rounds: { type: 'string', default: '3' },
    events: { type: 'string', default: '20000' },
    keys: { type: 'string', default: '1000' },
    'hot-events': { type: 'string', default: '2000' },
    connections: { type: 'string', default: '50' },
    json: { type: 'boolean', default: false }
  }
})
const rounds = Number(flags.rounds)
const events = Number(flags.events)
const hotEvents = Number(flags['hot-events'])
const keyedMode = `keys:${Number(flags.keys)}`
const here = (file) => fileURLToPath(new URL(file, import.meta.url))
let receivers = 0

async function measure (kind, target, mode, count) {
  const name = `ordering_${process.pid}_${++receivers}`
  // SIR_BENCH_CPU_PROF=<dir>: V8 profiles of the receivers (node bench/profile-summary.js reads them).
  const profile = process.env.SIR_BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.SIR_BENCH_CPU_PROF}`] : []
  const child = spawn(...nodeOnServerCpu(pinned, [...profile, here('./ordering-server.js'), kind, target, mode]), {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, SIR_BENCH_SECRET: SECRET, SIR_BENCH_SCHEMA: name, NODE_ENV: 'production' }
  })
  try {
    const { port } = await readyOf(child, `${kind} ${mode}`)
    const fill = await autocannon({
      url: `http://127.0.0.1:${port}${PATH}`,
      method: 'POST',
      connections: Number(flags.connections),
      pipelining: 1,
      amount: count,
      requests: freshDeliveries(new DeliverySource('sir', 'small'))
    })
    if (fill['2xx'] !== count) throw new Error(`${kind} ${mode}: ${fill['2xx']} of ${count} deliveries acknowledged (${fill.non2xx} non-2xx, ${fill.errors} errors)`)
    // The fill's own rate is not reported: autocannon ends an `amount` run on its
    // one-second tick, so it reads as 20 000 over 3 or 4 s. bench/burst.js measures accepts.
    const drained = await ask(child, { run: count })
    return { handledPerSecond: count / drained.seconds, mostAtOnce: drained.mostAtOnce }
  } finally {
    await stopReceiver(child)
  }
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}
const fmt = (value) => Math.round(value).toLocaleString('en-US')

const results = {}
try {
  console.log(`# Ordering: ${events} events per run over ${flags.keys} keys vs off, ${hotEvents} on one hot key; ${rounds} rounds, modes alternating; every option at its default; ${pinned ? 'receiver on CPU 1, load on CPU 0 (taskset)' : 'not pinned'}`)
  console.log(`# node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown CPU'} x ${os.availableParallelism()}, load average ${os.loadavg().map((load) => load.toFixed(1)).join(' ')} before the run\n`)
  const targets = {}
  for (const kind of flags.inboxes.split(',')) {
    // One server per store for every run (a fresh schema or queue each); SQLite a fresh file each.
    if (kind !== 'sqlite') targets[kind] = await storeFor(kind)
    results[kind] = { off: [], on: [], hot: [], hotSerial: true }
  }
  for (let round = 0; round < rounds; round++) {
    const modes = round % 2 === 0 ? ['off', keyedMode, 'hot'] : ['hot', keyedMode, 'off']
    for (const kind of Object.keys(results)) {
      for (const mode of modes) {
        const target = kind === 'sqlite' ? await storeFor('sqlite') : targets[kind]
        const figure = await measure(kind, target, mode, mode === 'hot' ? hotEvents : events)
        const row = results[kind]
        if (mode === 'off') row.off.push(figure.handledPerSecond)
        else if (mode === 'hot') { row.hot.push(figure.handledPerSecond); row.hotSerial &&= figure.mostAtOnce === 1 }
        else row.on.push(figure.handledPerSecond)
        console.log(`round ${round + 1} ${kind.padEnd(8)} ${mode.padEnd(10)} handled/s ${fmt(figure.handledPerSecond).padStart(7)}`)
      }
    }
  }
  console.log('\n| store | handled/s, ordering off | handled/s, over ' + flags.keys + ' keys | on / off | one hot key, handled/s |')
  console.log('|---|---:|---:|---:|---:|')
  for (const [kind, row] of Object.entries(results)) {
    const ratio = median(row.on) / median(row.off)
    console.log(`| ${kind} | ${fmt(median(row.off))} | ${fmt(median(row.on))} | ${(ratio * 100).toFixed(0)} % | ${fmt(median(row.hot))}${row.hotSerial ? '' : ' (overlapped!)'} |`)
  }
  console.log('\nmedians of the rounds; handled/s is the drain of a backlog accepted before the handler was registered')
  if (flags.json) console.log(JSON.stringify(results))
} finally {
  await stopStores()
}
