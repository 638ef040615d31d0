#!/usr/bin/env node
// Flow control and bursts (issue 22): `node bench/burst.js --scenario NAME`, after
// `npm run build`. Every receiver and inbox option is at its default; the handler
// is the only thing that changes. Receiver(s) on CPU 1, autocannon on CPU 0
// (taskset), the stores unpinned, a fresh event id per request. Scenarios:
//   burst       50 connections at full speed for --duration s (10): non-2xx,
//               acknowledged/s, and how long the backlog takes to drain afterwards;
//               --handler noop (default) or sleep:20; --then-latency: right after
//               the burst, 1 000 deliveries/s for --duration s on the same (warm)
//               receiver while its backlog drains: their p99 (--pace as below);
//               drainSeconds then counts from the burst's end, those 10 s included;
//               cpuMicrosPerEvent: the receivers' CPU (user + system) from the
//               burst's start until the backlog drained, per event acknowledged,
//               a figure the machine's noise moves less than a rate
//   latency     an accept-only receiver fills the store with --backlog events
//               (50 000) at full speed; then the measured receiver, with the
//               handler, is offered 1 000 deliveries/s for --duration s while it
//               drains that backlog: p50/p99 of the acknowledgements (durable inboxes);
//               --warmup S offers the same rate for S seconds first, unmeasured;
//               --pace even sends the deliveries evenly spaced (bench/paced-load.js),
//               timed from when each was due, where autocannon (the default) sends
//               each second's share in a burst as the second starts
//   pacing      500 deliveries/s for 30 s to a handler with rate { perSecond: 20 }:
//               the handler's measured rate, non-2xx, dead letters; --receivers 2
//               puts two receivers on one store (one Postgres schema, one Redis queue)
//   retry-later a handler that throws RetryLater({ afterMs: 2000 }) for 30 s, then
//               recovers, offered 100 deliveries/s for 30 s: dead letters, events
//               handled once, twice, or not at all
// --inboxes memory,sqlite,postgres,bullmq picks the stores (SIR_POSTGRES_URL and
// SIR_REDIS_URL name running ones; otherwise they are started here).
// Method and figures: docs/performance.md, "Flow control and bursts".
import { spawn } from 'node:child_process'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { DeliverySource, PATH, SECRET, freshDeliveries } from './deliveries.js'
import { pacedLoad } from './paced-load.js'
import { nodeOnServerCpu } from './pinning.js'
import { pinned, stopStores, storeFor } from './stores.js'

const { values: flags } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'burst' },
    inboxes: { type: 'string', default: 'sqlite,postgres,bullmq' },
    handler: { type: 'string' },
    duration: { type: 'string' },
    connections: { type: 'string', default: '50' },
    receivers: { type: 'string', default: '1' },
    backlog: { type: 'string', default: '50000' },
    warmup: { type: 'string', default: '0' },
    'then-latency': { type: 'boolean', default: false },
    'drain-limit': { type: 'string', default: '120' },
    pace: { type: 'string', default: 'autocannon' }
  }
})
const scenario = flags.scenario
const connections = Number(flags.connections)
const receivers = Number(flags.receivers)
const drainLimitMs = Number(flags['drain-limit']) * 1000
const here = (file) => fileURLToPath(new URL(file, import.meta.url))
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const SCENARIOS = {
  burst: { handler: 'noop', duration: 10 },
  latency: { handler: 'noop', duration: 10 },
  pacing: { handler: 'rate:20', duration: 30, rate: 500 },
  'retry-later': { handler: 'retry-later:30000:2000', duration: 30, rate: 100 }
}
const plan = SCENARIOS[scenario]
if (plan === undefined) throw new Error(`unknown scenario ${scenario}; one of ${Object.keys(SCENARIOS).join(', ')}`)
const handler = flags.handler ?? plan.handler
const duration = Number(flags.duration ?? plan.duration)

function startServer (kind, target, shared, acceptOnly = false) {
  // SIR_BENCH_CPU_PROF=<dir>: V8 profiles of the measured receivers (node bench/profile-summary.js reads them).
  const profile = process.env.SIR_BENCH_CPU_PROF && !acceptOnly ? ['--cpu-prof', `--cpu-prof-dir=${process.env.SIR_BENCH_CPU_PROF}`] : []
  const child = spawn(...nodeOnServerCpu(pinned, [...profile, here('./burst-server.js'), kind, target, handler]), {
    // stdout ignored: close() logs each event it cuts off (the memory inbox's), which
    // the counts already say; stderr shows a receiver that fails to start.
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    env: { ...process.env, SIR_BENCH_SECRET: SECRET, NODE_ENV: 'production', SIR_BENCH_SCHEMA: `burst_${shared}`, SIR_BENCH_QUEUE: `burst-${shared}`, SIR_BENCH_NO_HANDLER: acceptOnly ? '1' : '0' }
  })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${kind}: no "ready" within 30 s`)), 30_000)
    child.once('message', (message) => { clearTimeout(timer); resolve({ child, port: message.port }) })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${kind}: exited with ${code} before it was ready (is there flow control for "${handler}" on this inbox?)`)) })
  })
}

function ask (child, message = 'stats') {
  return new Promise((resolve) => {
    child.once('message', resolve)
    child.send(message)
  })
}

async function statsOf (servers) {
  const all = await Promise.all(servers.map(({ child }) => ask(child)))
  const sum = (name) => all.reduce((total, one) => total + one[name], 0)
  const most = (name) => Math.max(...all.map((one) => one[name]))
  return { cpuMicros: sum('cpuMicros'), loopP99: most('loopP99'), loopMax: most('loopMax'), serverP99: most('serverP99'), serverMax: most('serverMax'), slowAcks: all.flatMap((one) => one.slowAcks),  accepted: sum('accepted'), calls: sum('calls'), handled: sum('handled'), unique: sum('unique'), twice: sum('twice'), dead: sum('dead'), size: all.some((one) => one.size === null) ? 'n/a' : Math.max(...all.map((one) => one.size)), health: all.map((one) => one.health).join(',') }
}

async function stopServer (child) {
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.send('stop')
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
  await exited
  clearTimeout(timer)
}

/** The `p` quantile (0..1) of `values`, by rank; NaN for none. */
const percentile = (values, p) => values.length === 0 ? NaN : [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))]

/** Load on every receiver at once, connections (and a fixed rate) shared out; results summed. */
async function load (servers, seconds, rate) {
  if (rate !== undefined && flags.pace === 'even') {
    const paced = await pacedLoad({ ports: servers.map(({ port }) => port), rate, seconds, connections })
    // Timed from when each delivery was due: p99raw and p99co are the same figure.
    const p99 = Math.round(percentile(paced.times, 0.99) * 10) / 10
    if (process.env.SIR_BENCH_PACE_DEBUG) console.log(`# paced: p99 of how late each delivery was written ${paced.sendLateP99.toFixed(1)} ms`)
    return { duration: paced.duration, ok: paced.times.length, non2xx: paced.non2xx, errors: paced.errors, p50: Math.round(percentile(paced.times, 0.5) * 10) / 10, p99, p99raw: p99, p99co: p99 }
  }
  if (flags.pace !== 'autocannon' && flags.pace !== 'even') throw new Error(`--pace is autocannon or even, not ${flags.pace}`)
  const share = Math.max(1, Math.floor(connections / servers.length))
  const startedAt = Date.now()
  const slow = []
  // Every 2xx's latency, for p99 without autocannon's coordinated-omission correction (below).
  const times = []
  const results = await Promise.all(servers.map(({ port }) => {
    const instance = autocannon({
      url: `http://127.0.0.1:${port}${PATH}`,
      method: 'POST',
      connections: share,
      pipelining: 1,
      duration: seconds,
      ...(rate === undefined ? {} : { overallRate: Math.max(1, Math.round(rate / servers.length)) }),
      requests: freshDeliveries(new DeliverySource('sir', 'small'))
    })
    // SIR_BENCH_SLOW_ACKS=1: when the slow answers (> 50 ms, as the load generator saw them) came.
    instance.on('response', (client, status, bytes, ms) => {
      if (status >= 200 && status < 300) times.push(ms)
      if (process.env.SIR_BENCH_SLOW_ACKS && ms > 50) slow.push([Date.now() - startedAt, Math.round(ms)])
    })
    return instance
  }))
  if (process.env.SIR_BENCH_SLOW_ACKS && rate !== undefined) {
    const buckets = {}
    for (const [at, ms] of slow) { const key = Math.floor(at / 250) * 250; buckets[key] = Math.max(buckets[key] ?? 0, ms) }
    console.log(`# client acks > 50 ms: ${slow.length}; > 100 ms: ${slow.filter(([, ms]) => ms > 100).length}; worst per 250 ms of the load: ${JSON.stringify(buckets)}`)
  }
  const sum = (pick) => results.reduce((total, result) => total + pick(result), 0)
  // With a rate, autocannon (7.x) corrects its latencies for coordinated omission with an
  // expected interval of Math.ceil(1 / rate) = 1 ms where the rate is per second (the interval
  // is 1000 / rate ms): each answer that took X ms is counted about X times, so a few slow
  // answers make its p99. p99raw: the answers as measured; p99co: corrected with the real interval.
  const perConnection = rate === undefined ? undefined : rate / servers.length / share
  const corrected = perConnection === undefined
    ? times
    : times.flatMap((ms) => {
      const interval = 1000 / perConnection
      const all = [ms]
      for (let missing = ms - interval; missing >= interval; missing -= interval) all.push(missing)
      return all
    })
  return {
    p99raw: percentile(times, 0.99),
    p99co: percentile(corrected, 0.99),
    duration: Math.max(...results.map((result) => result.duration)),
    ok: sum((result) => result['2xx']),
    non2xx: sum((result) => result.non2xx),
    errors: sum((result) => result.errors + result.timeouts),
    p50: Math.max(...results.map((result) => result.latency.p50)),
    p99: Math.max(...results.map((result) => result.latency.p99))
  }
}

/** Waits until the handlers have handled `count` events (or the limit); the seconds it took, or NaN. */
async function drained (servers, count, since) {
  for (;;) {
    const stats = await statsOf(servers)
    if (stats.unique >= count) return { seconds: (Date.now() - since) / 1000, stats }
    if (Date.now() - since > drainLimitMs) return { seconds: NaN, stats }
    await sleep(100)
  }
}

async function run (kind) {
  const target = await storeFor(kind)
  const shared = `${process.pid}_${kind}`
  const servers = []
  try {
    const seeded = scenario === 'latency' ? await seed(kind, target, shared) : 0
    for (let index = 0; index < receivers; index++) servers.push(await startServer(kind, target, shared))
    const row = { inbox: receivers > 1 ? `${kind} x${receivers}` : kind }
    if (scenario === 'latency') {
      // --warmup S: S seconds at the same rate first, not measured (a receiver just started, its first connections).
      if (Number(flags.warmup) > 0) await load(servers, Number(flags.warmup), 1_000)
      await Promise.all(servers.map(({ child }) => ask(child, 'loop-reset')))
      const steady = await load(servers, duration, 1_000)
      const after = await statsOf(servers)
      // loopP99 / loopMax: the receiver's event-loop delay (ms) during the load, monitorEventLoopDelay.
      if (process.env.SIR_BENCH_SLOW_ACKS) {
        const buckets = {}
        for (const [at, ms] of after.slowAcks) { const key = Math.floor(at / 250) * 250; buckets[key] = Math.max(buckets[key] ?? 0, ms) }
        console.log(`# server acks > 50 ms: ${after.slowAcks.length}; worst per 250 ms: ${JSON.stringify(buckets)}`)
        if (process.env.SIR_BENCH_SLOW_ACKS === 'all') console.log(JSON.stringify(after.slowAcks))
      }
      Object.assign(row, { backlogBefore: seeded, offeredPerSecond: steady.ok / steady.duration, non2xx: steady.non2xx, errors: steady.errors, p50: steady.p50, p99: steady.p99, p99raw: steady.p99raw, p99co: steady.p99co, loopP99: after.loopP99, loopMax: after.loopMax, serverP99: after.serverP99, serverMax: after.serverMax, handledMeanwhile: after.handled, backlogAfter: after.size })
    } else if (scenario === 'burst') {
      const warm = await load(servers, 1)
      await drained(servers, warm.ok, Date.now())
      const before = await statsOf(servers)
      const base = before.unique
      const burst = await load(servers, duration)
      const stoppedAt = Date.now()
      Object.assign(row, { ackPerSecond: burst.ok / burst.duration, non2xx: burst.non2xx, errors: burst.errors, p99: burst.p99, backlogAtEnd: (await statsOf(servers)).size })
      // --then-latency: at once, 1 000 deliveries/s for --duration s while the burst's backlog drains (the same receiver, warm).
      const then = flags['then-latency'] ? await load(servers, duration, 1_000) : undefined
      if (then !== undefined) Object.assign(row, { thenNon2xx: then.non2xx, thenP99: then.p99, thenP99raw: then.p99raw, thenP99co: then.p99co, thenBacklogAfter: (await statsOf(servers)).size })
      const drain = await drained(servers, base + burst.ok + (then?.ok ?? 0), stoppedAt)
      Object.assign(row, { drainSeconds: drain.seconds, handled: drain.stats.unique - base, acknowledged: burst.ok + (then?.ok ?? 0), dead: drain.stats.dead })
      // The receivers' CPU from the burst's start until the backlog drained, per event acknowledged: accept and handling both.
      const after = await statsOf(servers)
      row.cpuMicrosPerEvent = Math.round((after.cpuMicros - before.cpuMicros) / row.acknowledged)
    } else {
      const startedAt = Date.now()
      let early
      // The pacing rate is measured from 5 s in, once the bucket's burst is spent.
      const sampler = scenario === 'pacing' ? sleep(5_000).then(async () => { early = { ...(await statsOf(servers)), at: Date.now() } }) : Promise.resolve()
      const offered = await load(servers, duration, plan.rate)
      await sampler
      const late = { ...(await statsOf(servers)), at: Date.now() }
      Object.assign(row, { offeredPerSecond: offered.ok / offered.duration, non2xx: offered.non2xx, errors: offered.errors, p99: offered.p99 })
      if (scenario === 'pacing') {
        Object.assign(row, { handlerPerSecond: (late.handled - early.handled) / ((late.at - early.at) / 1000), dead: late.dead, backlog: late.size })
      } else {
        // Counted by the receivers: autocannon leaves out answers that arrive after its last second.
        const { accepted } = await statsOf(servers)
        const drain = await drained(servers, accepted, startedAt)
        Object.assign(row, { accepted, handledOnce: drain.stats.unique, handledTwice: drain.stats.twice, dead: drain.stats.dead, calls: drain.stats.calls, allHandledAfter: drain.seconds })
      }
    }
    return row
  } finally {
    for (const { child } of servers) await stopServer(child)
  }
}

/** Fills the store with `--backlog` events through an accept-only receiver, then stops it; the backlog left. */
async function seed (kind, target, shared) {
  const wanted = Number(flags.backlog)
  const [filler] = [await startServer(kind, target, shared, true)]
  try {
    const startedAt = Date.now()
    // Accepted by a receiver that runs nothing: what waits in the store.
    for (;;) {
      const { accepted } = await statsOf([filler])
      if (accepted >= wanted || Date.now() - startedAt > 120_000) break
      await load([filler], 2)
    }
    return (await statsOf([filler])).accepted
  } finally {
    await stopServer(filler.child)
  }
}

const fmt = (value, digits = 0) => typeof value === 'number' ? (Number.isFinite(value) ? value.toFixed(digits) : 'n/a') : String(value)
try {
  console.log(`# bench/burst.js --scenario ${scenario}: handler ${handler}, ${duration} s, ${connections} connections, ${receivers} receiver(s), every option at its default, pace ${flags.pace}; ${pinned ? 'receivers on CPU 1, load on CPU 0 (taskset)' : 'not pinned'}`)
  console.log(`# node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown CPU'} x ${os.availableParallelism()}, load average ${os.loadavg().map((value) => value.toFixed(1)).join(' ')} before the run`)
  for (const kind of flags.inboxes.split(',')) {
    try {
      const row = await run(kind)
      console.log(Object.entries(row).map(([key, value]) => `${key} ${fmt(value, key.includes('Seconds') || key.startsWith('p') || key.includes('P') ? 1 : 0)}`).join('  '))
    } catch (error) {
      console.log(`${kind}: ${error.message}`)
    }
  }
} finally {
  await stopStores()
}
