#!/usr/bin/env node
// The benchmark: `npm run bench` (full, about 15 minutes), `npm run bench -- --smoke`
// (about 5 seconds; checks the benchmark still works and exits non-zero if not).
// Method and results: docs/performance.md.
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { DeliverySource, PATH, SECRET, freshDeliveries } from './deliveries.js'
import { canPin, nodeOnServerCpu, pinSelfToLoadCpu } from './pinning.js'
import { SERVERS } from './servers.js'

const { values: flags } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    duration: { type: 'string' },
    rounds: { type: 'string' },
    servers: { type: 'string' },
    connections: { type: 'string', default: '50' },
    pipelining: { type: 'string', default: '10' },
    'no-memory': { type: 'boolean', default: false },
    'no-latency': { type: 'boolean', default: false },
    'no-throughput': { type: 'boolean', default: false },
    'no-pin': { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    'server-flags': { type: 'string' },
    configs: { type: 'string' },
    warmup: { type: 'string' },
    json: { type: 'string' },
    alloc: { type: 'boolean', default: false },
    dist: { type: 'string' }
  }
})

const smoke = flags.smoke
const durationSeconds = Number(flags.duration ?? (smoke ? 0.5 : 5))
const rounds = Number(flags.rounds ?? (smoke ? 1 : 2))
const connections = Number(flags.connections)
const pipeliningDepth = Number(flags.pipelining)
const warmupSeconds = Number(flags.warmup ?? (smoke ? 0 : 1.5))
const serverNames = flags.servers !== undefined
  ? flags.servers.split(',')
  : smoke ? ['fastify-minimal', 'sir-fastify', 'sir-express'] : SERVERS.filter((server) => server.group !== 'diagnostic').map((server) => server.name)
// --configs small:1,large:10 picks body sizes and pipelining depths, for profiling one case.
const configs = flags.configs !== undefined
  ? flags.configs.split(',').map((pair) => { const [size, depth] = pair.split(':'); return { size, pipelining: Number(depth ?? 1) } })
  : smoke
    ? [{ size: 'large', pipelining: pipeliningDepth }]
    : [{ size: 'small', pipelining: 1 }, { size: 'small', pipelining: pipeliningDepth }, { size: 'large', pipelining: 1 }, { size: 'large', pipelining: pipeliningDepth }]

const here = (file) => fileURLToPath(new URL(file, import.meta.url))
const problems = []

// ---------------------------------------------------------------- CPU pinning

const pinned = !flags['no-pin'] && canPin()
if (pinned) pinSelfToLoadCpu()

// ---------------------------------------------------------------- child servers

function startChild (script, args, { nodeFlags = [] } = {}) {
  const [command, commandArgs] = nodeOnServerCpu(pinned, [...nodeFlags, here(script), ...args])
  return spawn(command, commandArgs, {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, SIR_BENCH_SECRET: SECRET, NODE_ENV: 'production', ...(flags.dist === undefined ? {} : { SIR_BENCH_DIST: path.resolve(flags.dist) }) }
  })
}

class ServerProcess {
  static async start (name, { handler = 'noop', maxQueueSize } = {}) {
    const args = [name, handler, ...(maxQueueSize === undefined ? [] : [String(maxQueueSize)])]
    const profile = flags['cpu-prof'] === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', flags['cpu-prof']]
    const extra = flags['server-flags'] === undefined ? [] : flags['server-flags'].split(' ')
    const child = startChild('./server.js', args, { nodeFlags: ['--expose-gc', ...profile, ...extra] })
    const ready = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name}: no "ready" within 15 s`)), 15_000)
      child.once('message', (message) => { clearTimeout(timer); resolve(message) })
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${name}: exited with ${code} before it was ready`)) })
    })
    return new ServerProcess(name, child, ready.port, ready.ports)
  }

  constructor (name, child, port, ports) {
    this.name = name
    this.child = child
    this.port = port
    this.ports = ports
  }

  usage (command = 'usage') {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no usage answer`)), 10_000)
      this.child.once('message', (message) => { clearTimeout(timer); resolve(message) })
      this.child.send(command)
    })
  }

  async stop () {
    if (this.child.exitCode !== null) return
    const exited = new Promise((resolve) => this.child.once('exit', resolve))
    this.child.send('stop')
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000)
    await exited
    clearTimeout(timer)
  }
}

// ---------------------------------------------------------------- one load run

function load (port, scheme, { size, pipelining, duration, amount, overallRate, connections: connectionCount = connections }) {
  const options = {
    url: `http://127.0.0.1:${port}${PATH}`,
    method: 'POST',
    connections: connectionCount,
    pipelining,
    requests: freshDeliveries(new DeliverySource(scheme, size))
  }
  if (amount !== undefined) options.amount = amount
  else options.duration = duration
  if (overallRate !== undefined) options.overallRate = overallRate
  return autocannon(options)
}

async function measure (server, scheme, config, duration) {
  const before = await server.usage()
  const result = await load(server.port, scheme, { ...config, duration })
  const after = await server.usage()
  const responses = result.requests.total
  const cpuMicros = (after.cpu.user - before.cpu.user) + (after.cpu.system - before.cpu.system)
  const wallMicros = Number(BigInt(after.wallNs) - BigInt(before.wallNs)) / 1000
  return {
    rps: responses / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    responses,
    ok: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    cpuPerRequest: responses === 0 ? NaN : cpuMicros / responses,
    serverCpuShare: cpuMicros / wallMicros,
    received: after.received - before.received,
    rssMiB: after.rss / 1048576
  }
}

// ---------------------------------------------------------------- formatting

const fmt = (value, digits = 0) => Number.isFinite(value) ? value.toFixed(digits) : 'n/a'
const mean = (values) => values.reduce((sum, value) => sum + value, 0) / values.length
const spread = (values) => values.length < 2 ? 0 : (Math.max(...values) - Math.min(...values)) / mean(values)

function table (header, rows) {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => String(row[column]).length)))
  const line = (cells) => '| ' + cells.map((cell, column) => String(cell).padEnd(widths[column])).join(' | ') + ' |'
  return [line(header), '|' + widths.map((width) => '-'.repeat(width + 2)).join('|') + '|', ...rows.map(line)].join('\n')
}

const configName = (config) => `${config.size === 'small' ? '~300 B' : '~8 KB'} body, pipelining ${config.pipelining}`

// ---------------------------------------------------------------- throughput

async function throughput () {
  const servers = serverNames.map((name) => {
    const server = SERVERS.find((candidate) => candidate.name === name)
    if (server === undefined) throw new Error(`unknown server ${name}; known: ${SERVERS.map((s) => s.name).join(', ')}`)
    return server
  })
  const template = new DeliverySource('sir', 'small').template.bytes + ' B / ' + new DeliverySource('sir', 'large').template.bytes + ' B'
  console.log(`\n## Throughput: ${connections} connections, ${durationSeconds} s per run, ${rounds} round(s), bodies ${template}`)
  // results[server][configIndex] = [run per round]
  const results = new Map(servers.map((server) => [server.name, configs.map(() => [])]))
  for (let round = 0; round < rounds; round++) {
    // Alternate the order each round so slow drift of the machine does not favour one end of the list.
    const order = round % 2 === 0 ? servers : [...servers].reverse()
    for (const server of order) {
      const child = await ServerProcess.start(server.name)
      try {
        if (warmupSeconds > 0) {
          for (const size of ['small', 'large']) {
            await load(child.port, server.scheme, { size, pipelining: 1, duration: warmupSeconds })
          }
        }
        for (const [index, config] of configs.entries()) {
          const run = await measure(child, server.scheme, config, durationSeconds)
          results.get(server.name)[index].push(run)
          process.stdout.write(`  round ${round + 1}  ${server.name.padEnd(24)} ${configName(config).padEnd(30)} ${fmt(run.rps).padStart(7)} req/s  ` +
            `cpu ${fmt(run.cpuPerRequest, 1).padStart(6)} µs/req  server cpu ${fmt(run.serverCpuShare * 100)}%  non-2xx ${run.non2xx}  errors ${run.errors}\n`)
          if (run.responses === 0) problems.push(`${server.name} (${configName(config)}): no responses`)
          if (run.non2xx > 0 || run.errors > 0) problems.push(`${server.name} (${configName(config)}): ${run.non2xx} non-2xx, ${run.errors} errors`)
          if (!(run.cpuPerRequest > 0)) problems.push(`${server.name} (${configName(config)}): no CPU time measured`)
          if (run.received === 0) problems.push(`${server.name} (${configName(config)}): no event reached a handler`)
        }
      } finally {
        await child.stop()
      }
    }
  }

  const summary = { configs: [], ratios: [] }
  for (const [index, config] of configs.entries()) {
    const rows = servers.map((server) => {
      const runs = results.get(server.name)[index]
      const rpsRuns = runs.map((run) => run.rps)
      return [
        server.name,
        fmt(mean(rpsRuns)),
        rpsRuns.map((value) => fmt(value)).join(' / '),
        `±${fmt(spread(rpsRuns) * 50, 1)}%`,
        fmt(mean(runs.map((run) => run.p50)), 1),
        fmt(mean(runs.map((run) => run.p99)), 1),
        runs.reduce((sum, run) => sum + run.errors, 0),
        runs.reduce((sum, run) => sum + run.non2xx, 0),
        fmt(mean(runs.map((run) => run.cpuPerRequest)), 1),
        `${fmt(mean(runs.map((run) => run.serverCpuShare)) * 100)}%`
      ]
    })
    console.log(`\n### ${configName(config)}\n`)
    console.log(table(['server', 'req/s', 'runs (req/s)', 'spread', 'p50 ms', 'p99 ms', 'errors', 'non-2xx', 'CPU µs/req', 'server CPU'], rows))
    summary.configs.push({ config, servers: Object.fromEntries(servers.map((server) => [server.name, results.get(server.name)[index]])) })
  }

  // Ratios are taken round by round (both servers measured minutes apart at most),
  // then averaged: on a shared machine the ratio holds where absolute numbers drift.
  const has = (name) => results.has(name)
  // [ours, theirs, target, note]: a target of 1 means "ahead"; each peer is mounted
  // in the same framework as ours, so only the receiver differs.
  const octokitNote = 'octokit answers after its handlers (a no-op one here)'
  const pairs = [
    ['sir-fastify', 'fastify-minimal-empty', 0.95],
    ['sir-fastify', 'fastify-minimal', 0.95],
    ['sir-fastify', 'fastify-raw-body', 1],
    ['sir-fastify', 'fastify-raw-body-buffer', 1],
    ['sir-fastify', 'standardwebhooks', 1],
    ['sir-fastify', 'fastify-bare'],
    ['sir-express', 'express-raw', 0.95],
    ['sir-express', 'express-octokit', 1, octokitNote],
    ['sir-express', 'express-standardwebhooks', 1],
    ['sir-node', 'node-minimal', 0.95],
    ['sir-node', 'octokit', 1, octokitNote],
    ['sir-fetch', 'node-minimal'],
    ['fastify-minimal-empty', 'fastify-minimal'],
    // Diagnostic, when named: the core over HTTP, then the plugin around it.
    ['fastify-core', 'fastify-minimal'],
    ['sir-fastify', 'fastify-core'],
    ['fastify-minimal', 'fastify-raw-body'],
    ['fastify-minimal', 'fastify-raw-body-buffer']
  ].filter(([ours, theirs]) => has(ours) && has(theirs))
  const ratioRows = []
  const targetRows = []
  for (const [ours, theirs, target, note] of pairs) {
    const cells = configs.map((_config, index) => {
      const a = results.get(ours)[index]
      const b = results.get(theirs)[index]
      const perRound = a.map((run, round) => run.rps / b[round].rps)
      const cpu = mean(b.map((run) => run.cpuPerRequest)) / mean(a.map((run) => run.cpuPerRequest))
      summary.ratios.push({ ours, theirs, config: configs[index], perRound, cpuRatio: cpu, target })
      if (target !== undefined) {
        const value = mean(perRound)
        targetRows.push([`${ours} / ${theirs}`, configName(configs[index]), `≥ ${target === 1 ? '1.00 (ahead)' : target.toFixed(2)}`,
          fmt(value, 2), fmt(cpu, 2), value >= target ? 'met' : 'NOT MET', note ?? ''])
      }
      return `${fmt(mean(perRound), 2)} (${perRound.map((value) => fmt(value, 2)).join('/')}; cpu ${fmt(cpu, 2)})`
    })
    ratioRows.push([`${ours} / ${theirs}`, ...cells])
  }
  if (ratioRows.length > 0) {
    console.log('\n### Ratios: throughput ours/theirs, mean (per round; inverse CPU-per-request ratio)\n')
    console.log(table(['ratio', ...configs.map(configName)], ratioRows))
  }
  if (smoke) {
    console.log('\n(smoke run: too short and too small for these ratios to mean anything)')
  } else if (targetRows.length > 0) {
    console.log('\n### Targets\n')
    console.log(table(['ratio', 'configuration', 'target', 'measured', 'cpu ratio', 'verdict', 'note'], targetRows))
  }
  return summary
}

// ---------------------------------------------------------------- allocations per request

/**
 * `--alloc`: heap objects allocated per request in each server, by package and
 * function, over 2 000 requests of the first configuration (after a warm-up).
 * Deterministic where timings are not: the tool for "fewer objects per event".
 */
async function allocations () {
  const config = configs[0]
  const requests = 2000
  console.log(`\n## Heap objects allocated per request: ${configName(config)}, ${requests} requests`)
  for (const name of serverNames) {
    const server = SERVERS.find((candidate) => candidate.name === name)
    const child = await ServerProcess.start(name)
    try {
      await load(child.port, server.scheme, { ...config, duration: Math.max(warmupSeconds, 1) })
      await child.usage('alloc-start')
      await load(child.port, server.scheme, { ...config, amount: requests, connections: Math.min(connections, 10) })
      const result = await child.usage('alloc-stop')
      const perRequest = (count) => (count / requests).toFixed(2).padStart(7)
      console.log(`\n${name}: ${(result.objects / requests).toFixed(1)} objects per request`)
      for (const [where, count] of Object.entries(result.byPackage).sort((a, b) => b[1] - a[1]).slice(0, 8)) console.log(`  ${perRequest(count)}  ${where}`)
      console.log('  by function:')
      for (const [where, count] of Object.entries(result.byFunction).sort((a, b) => b[1] - a[1]).slice(0, 60)) console.log(`  ${perRequest(count)}  ${where}`)
    } finally {
      await child.stop()
    }
  }
}

// ---------------------------------------------------------------- smoke: every server answers

/**
 * The smoke run measures three servers; this checks that every other one still
 * starts and accepts validly signed deliveries of both sizes (a broken peer would
 * otherwise surface only in the full run).
 */
async function checkServers (names) {
  const started = Date.now()
  const child = await ServerProcess.start(names.join(','))
  try {
    await Promise.all(names.map(async (name) => {
      const server = SERVERS.find((candidate) => candidate.name === name)
      for (const size of ['small', 'large']) {
        const result = await load(child.ports[name], server.scheme, { size, pipelining: 1, amount: 20, connections: 2 })
        if (result['2xx'] !== 20 || result.errors + result.timeouts > 0) {
          problems.push(`${name} (${size} body): ${result['2xx']} of 20 deliveries answered 2xx, ${result.non2xx} non-2xx, ${result.errors + result.timeouts} errors`)
        }
      }
    }))
    const usage = await child.usage()
    for (const name of names) {
      if (usage.receivedBy[name] !== 40) problems.push(`${name}: ${usage.receivedBy[name]} of 40 events reached a handler`)
    }
  } finally {
    await child.stop()
  }
  console.log(`\nevery other server answered 2xx to 20 deliveries of each size: ${names.join(', ')} (${((Date.now() - started) / 1000).toFixed(1)} s)`)
}

// ---------------------------------------------------------------- acknowledgement latency

/**
 * Sends deliveries at a steady rate over keep-alive connections and times each
 * answer. autocannon's rate limit sends each second's requests in one burst, so
 * its latencies would measure how long a burst takes to drain, not an answer.
 */
function pacedLoad (port, { rate, seconds }) {
  const source = new DeliverySource('sir', 'small')
  source.refresh()
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections })
  const latencies = []
  const counts = { ok: 0, non2xx: 0, errors: 0 }
  const total = Math.round(rate * seconds)
  let sent = 0
  let settled = 0
  return new Promise((resolve) => {
    const finish = () => {
      agent.destroy()
      latencies.sort((a, b) => a - b)
      const at = (share) => latencies[Math.min(latencies.length - 1, Math.floor(share * latencies.length))] ?? NaN
      resolve({ ...counts, p50: at(0.5), p99: at(0.99), max: latencies.at(-1) ?? NaN })
    }
    const send = () => {
      const { body, headers } = source.next()
      const started = process.hrtime.bigint()
      const request = http.request({ host: '127.0.0.1', port, path: PATH, method: 'POST', agent, headers: { ...headers, 'content-length': body.length } }, (response) => {
        response.resume()
        response.on('end', () => {
          latencies.push(Number(process.hrtime.bigint() - started) / 1e6)
          if (response.statusCode >= 200 && response.statusCode < 300) counts.ok += 1
          else counts.non2xx += 1
          if (++settled === total) finish()
        })
      })
      request.on('error', () => {
        counts.errors += 1
        if (++settled === total) finish()
      })
      request.end(body)
    }
    const begin = performance.now()
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor((performance.now() - begin) / 1000 * rate))
      while (sent < due) {
        sent += 1
        send()
      }
      if (sent === total) clearInterval(timer)
    }, 1)
  })
}

async function ackLatency () {
  const rate = 1000
  const seconds = 5
  console.log(`\n## Acknowledgement latency: sir-webhooks Fastify plugin, ${rate} deliveries/s at a steady pace, up to ${connections} keep-alive connections, ${seconds} s, ~300 B body`)
  console.log('Handlers that take 1 s each (concurrency 10: the queue grows all run long, below its bound of 10 000) vs no-op handlers.\n')
  const runs = { noop: [], slow: [] }
  for (const handler of ['noop', 'slow', 'slow', 'noop']) {
    const child = await ServerProcess.start('sir-fastify', { handler })
    try {
      await pacedLoad(child.port, { rate, seconds: 1 })
      const run = await pacedLoad(child.port, { rate, seconds })
      const after = await child.usage()
      runs[handler].push({ ...run, queued: after.queued })
      console.log(`  ${handler.padEnd(5)} p50 ${fmt(run.p50, 2)} ms  p99 ${fmt(run.p99, 2)} ms  max ${fmt(run.max, 1)} ms  2xx ${run.ok}  non-2xx ${run.non2xx}  errors ${run.errors}  events still queued ${after.queued}`)
      if (run.non2xx > 0 || run.errors > 0 || run.ok === 0) problems.push(`ack latency (${handler}): ${run.ok} 2xx, ${run.non2xx} non-2xx, ${run.errors} errors`)
    } finally {
      await child.stop()
    }
  }
  const noopP99 = mean(runs.noop.map((run) => run.p99))
  const slowP99 = mean(runs.slow.map((run) => run.p99))
  const ratio = slowP99 / noopP99
  console.log(`\n  p99 with 1 s handlers / p99 with no-op handlers = ${fmt(slowP99, 2)} / ${fmt(noopP99, 2)} ms = ${fmt(ratio, 2)} (target ≤ 1.50: ${ratio <= 1.5 ? 'met' : 'NOT MET'})`)
  return { rate, seconds, runs, ratio }
}

// ---------------------------------------------------------------- memory

function memoryRun (mode) {
  return new Promise((resolve, reject) => {
    const child = spawn(...nodeOnServerCpu(pinned, ['--expose-gc', here('./memory.js'), mode, ...(smoke ? ['--smoke'] : [])]),
      { stdio: ['ignore', 'pipe', 'inherit'] })
    let output = ''
    child.stdout.on('data', (chunk) => { output += chunk })
    child.on('exit', (code) => {
      const lines = output.trim().split('\n')
      try {
        const result = JSON.parse(lines.at(-1))
        for (const line of lines.slice(0, -1)) console.log(line)
        if (code !== 0) problems.push(`memory ${mode}: exited with ${code}`)
        resolve(result)
      } catch (error) {
        reject(new Error(`memory ${mode}: exit ${code}, unreadable output: ${output.slice(-500)}`, { cause: error }))
      }
    })
  })
}

async function memory () {
  const flood = await memoryRun('flood')
  const dedupe = await memoryRun('dedupe')
  for (const result of [flood, dedupe]) {
    for (const failure of result.failures) problems.push(`memory ${result.mode}: ${failure}`)
  }
  return { flood, dedupe }
}

// ---------------------------------------------------------------- main

function machine () {
  const cpuModel = os.cpus()[0]?.model ?? 'unknown'
  return {
    node: process.version,
    nproc: os.availableParallelism(),
    cpuModel,
    pinned: pinned ? 'load generator on CPU 0, server on CPU 1 (taskset)' : 'not pinned',
    loadavg: os.loadavg().map((value) => value.toFixed(2)).join(' ')
  }
}

const started = Date.now()
const report = { date: new Date().toISOString(), machine: machine(), smoke }
console.log(`# sir-webhooks benchmark${smoke ? ' (smoke)' : ''}: ${report.date}`)
console.log(`node ${report.machine.node}, ${report.machine.nproc} CPUs (${report.machine.cpuModel}), ${report.machine.pinned}, load average ${report.machine.loadavg}`)

try {
  // The smoke run checks that each part works, not what it measures: the memory
  // runs and the check of the other servers go alongside the load runs there, and
  // the latency run is left out.
  if (flags.alloc) {
    await allocations()
    process.exit(problems.length > 0 ? 1 : 0)
  }
  const memoryRuns = smoke && !flags['no-memory'] ? memory() : undefined
  const checks = smoke && flags.servers === undefined
    ? checkServers(SERVERS.map((server) => server.name).filter((name) => !serverNames.includes(name)))
    : undefined
  if (!flags['no-throughput']) report.throughput = await throughput()
  await checks
  if (!smoke && !flags['no-latency']) report.ackLatency = await ackLatency()
  if (memoryRuns !== undefined) report.memory = await memoryRuns
  else if (!flags['no-memory']) report.memory = await memory()
} catch (error) {
  problems.push(error.stack ?? String(error))
}
report.finishedLoadavg = os.loadavg().map((value) => value.toFixed(2)).join(' ')
report.problems = problems
console.log(`\nload average at the end ${report.finishedLoadavg}; ${((Date.now() - started) / 1000).toFixed(1)} s in all`)
if (flags.json !== undefined) writeFileSync(flags.json, JSON.stringify(report, null, 2) + '\n')

if (problems.length > 0) {
  console.error(`\nThe benchmark itself did not work as it should:\n- ${problems.join('\n- ')}`)
  process.exit(1)
}
if (smoke) console.log('\nsmoke: servers started, every answer was 2xx, numbers were produced')
