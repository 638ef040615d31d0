#!/usr/bin/env node
// Durable acknowledgement: `npm run bench:inboxes`. The same node:http receiver on
// each inbox (memory, SQLite, Postgres, BullMQ), server on one core, autocannon on
// the other, 50 connections, a fresh event id per request. Reports acknowledged/s,
// p99, non-2xx, and how long the handlers take to finish the backlog once the load
// stops. Method and the committed run: docs/performance.md ("Inboxes").
import { spawn } from 'node:child_process'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { DeliverySource, PATH, SECRET, freshDeliveries } from './deliveries.js'
import { nodeOnServerCpu } from './pinning.js'
import { ask, pinned, readyOf, stopReceiver as stopServer, stopStores, storeFor } from './stores.js'

const { values: flags } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    inboxes: { type: 'string', default: 'memory,sqlite,postgres,bullmq' },
    'drain-limit': { type: 'string', default: '60' },
    // Postgres only: receivers sharing one schema, each taking an equal share of
    // the connections, all on the receiver's CPU.
    instances: { type: 'string', default: '1' }
  }
})
const durationSeconds = Number(flags.duration)
const connections = Number(flags.connections)
const drainLimitSeconds = Number(flags['drain-limit'])
const instances = Number(flags.instances)
const here = (file) => fileURLToPath(new URL(file, import.meta.url))

function startServer (kind, target, schema) {
  const args = [here('./inbox-server.js'), kind, target]
  const child = spawn(...nodeOnServerCpu(pinned, args), {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, SIR_BENCH_SECRET: SECRET, NODE_ENV: 'production', ...(schema === undefined ? {} : { SIR_BENCH_SCHEMA: schema }) }
  })
  return readyOf(child, kind)
}

function load (port, duration, share = connections) {
  return autocannon({
    url: `http://127.0.0.1:${port}${PATH}`,
    method: 'POST',
    connections: share,
    pipelining: 1,
    duration,
    requests: freshDeliveries(new DeliverySource('sir', 'small'))
  })
}

/** Loads every server at once, the connections shared out; the results summed. */
async function loadAll (servers, duration) {
  const share = Math.max(1, Math.floor(connections / servers.length))
  const results = await Promise.all(servers.map(({ port }) => load(port, duration, share)))
  const sum = (pick) => results.reduce((total, result) => total + pick(result), 0)
  return {
    duration: Math.max(...results.map((result) => result.duration)),
    '2xx': sum((result) => result['2xx']),
    non2xx: sum((result) => result.non2xx),
    errors: sum((result) => result.errors),
    timeouts: sum((result) => result.timeouts),
    // With several servers: the slowest server's percentiles.
    latency: { p50: Math.max(...results.map((result) => result.latency.p50)), p99: Math.max(...results.map((result) => result.latency.p99)) }
  }
}

/** Events handled by every server together. */
async function handledBy (servers) {
  const answers = await Promise.all(servers.map(({ child }) => ask(child, 'handled')))
  return answers.reduce((total, answer) => total + answer.handled, 0)
}

/** The handled count once it reaches `count`, or when `limitMs` ran out. */
async function handledAtLeast (servers, count, limitMs) {
  const started = Date.now()
  for (;;) {
    const handled = await handledBy(servers)
    if (handled >= count || Date.now() - started > limitMs) return handled
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

async function run (kind) {
  const target = await storeFor(kind)
  const count = kind === 'postgres' ? instances : 1
  const schema = count > 1 ? `bench_shared_${process.pid}` : undefined
  const servers = []
  try {
    for (let index = 0; index < count; index++) servers.push(await startServer(kind, target, schema))
    // A short warm-up: connections, JIT, prepared plans; its events drain before the run.
    const warmed = (await loadAll(servers, 1))['2xx']
    // Counted from here, so the run's drain includes nothing of the warm-up's.
    const warm = await handledAtLeast(servers, warmed, 30_000)
    const result = await loadAll(servers, durationSeconds)
    const stoppedAt = Date.now()
    const acknowledged = result['2xx']
    let handled = 0
    let drainSeconds = NaN
    while (Date.now() - stoppedAt < drainLimitSeconds * 1000) {
      handled = await handledBy(servers) - warm
      if (handled >= acknowledged) {
        drainSeconds = (Date.now() - stoppedAt) / 1000
        break
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    return {
      inbox: count > 1 ? `${kind} x${count}` : kind,
      acknowledgedPerSecond: acknowledged / result.duration,
      p50: result.latency.p50,
      p99: result.latency.p99,
      acknowledged,
      non2xx: result.non2xx,
      errors: result.errors + result.timeouts,
      handled,
      drainSeconds
    }
  } finally {
    for (const { child } of servers) await stopServer(child)
  }
}

const fmt = (value, digits = 0) => Number.isFinite(value) ? value.toFixed(digits) : 'n/a'
const results = []
try {
  console.log(`# Inboxes: ${connections} connections, ${durationSeconds} s of load, ~300 B bodies, a fresh id per request; ${pinned ? 'receiver on CPU 1, load on CPU 0 (taskset)' : 'not pinned'}`)
  console.log(`# node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown CPU'} x ${os.availableParallelism()}, load average ${os.loadavg().map((load) => load.toFixed(1)).join(' ')} before the run\n`)
  for (const kind of flags.inboxes.split(',')) {
    const row = await run(kind)
    results.push(row)
    console.log(`${row.inbox.padEnd(11)} ${fmt(row.acknowledgedPerSecond).padStart(6)} ack/s  p50 ${fmt(row.p50, 1)} ms  p99 ${fmt(row.p99, 1)} ms  non-2xx ${row.non2xx}  errors ${row.errors}  drained in ${row.drainSeconds >= 0 ? fmt(row.drainSeconds, 1) + ' s' : `more than ${drainLimitSeconds} s (${row.handled} of ${row.acknowledged})`}`)
  }
  console.log('\n| inbox | acknowledged/s | p50 ms | p99 ms | non-2xx | errors | backlog drained after the load |')
  console.log('|---|---|---|---|---|---|---|')
  for (const row of results) {
    console.log(`| ${row.inbox} | ${fmt(row.acknowledgedPerSecond)} | ${fmt(row.p50, 1)} | ${fmt(row.p99, 1)} | ${row.non2xx} | ${row.errors} | ${row.drainSeconds >= 0 ? fmt(row.drainSeconds, 1) + ' s' : `> ${drainLimitSeconds} s`} |`)
  }
} finally {
  await stopStores()
}
