#!/usr/bin/env node
// Ordering's cost per event, without HTTP: `node bench/ordering-drain.js`, after a
// build. One process (pinned to the server CPU when taskset exists) fills a store
// through `webhooks.receive()` with --events signed deliveries while no handler is
// registered, then registers a no-op handler and times the drain. Modes alternate
// within each round (off, then ordering over --keys keys; reversed next round) so
// that both see the same machine; many short rounds, medians. Every inbox option
// at its default. bench/ordering.js is the end-to-end figure (docs/performance.md,
// "Ordering"); this one is for trying a change to the claim or the outcome write
// and seeing its effect through less noise.
import { spawnSync } from 'node:child_process'
import os from 'node:os'
import { parseArgs } from 'node:util'
import { nodeOnServerCpu } from './pinning.js'
import { pinned, stopStores, storeFor } from './stores.js'
import { receiverInbox } from './receiver-inbox.js'

const { values: flags } = parseArgs({
  options: {
    inboxes: { type: 'string', default: 'sqlite' },
    rounds: { type: 'string', default: '7' },
    events: { type: 'string', default: '10000' },
    keys: { type: 'string', default: '1000' },
    child: { type: 'string' }
  }
})

/** FNV-1a of the id: a user's key (an action id, say), spread over `keys`. */
function keyOf (id, keys) {
  let hash = 0x811c9dc5
  for (let i = 0; i < id.length; i++) hash = Math.imul(hash ^ id.charCodeAt(i), 0x01000193)
  return `k${(hash >>> 0) % keys}`
}

async function drainOnce (kind, target, mode, events, keys, name) {
  const { Webhooks } = await import('../dist/index.js')
  const { createDelivery } = await import('../dist/testing/index.js')
  const secret = 'bench-ordering-drain-secret'
  const ordering = mode === 'off' ? undefined : { key: (event) => keyOf(event.id, keys) }
  const webhooks = new Webhooks({ secret, inbox: await receiverInbox(kind, target, name), logger: { level: 'warn', trace () {}, debug () {}, info () {}, warn () {}, error () {}, fatal () {}, child () { return this } }, ...(ordering === undefined ? {} : { ordering }) })
  const encoder = new TextEncoder()
  let next = 0
  async function fillOne () {
    while (next < events) {
      const n = next++
      const delivery = createDelivery({ id: `evt_${name}_${n}`, type: 'action.completed', createdAt: '2026-05-10T09:12:00Z', data: { actionId: `a${n}` } }, { secret })
      const answer = await webhooks.receive({ contentType: 'application/json', signature: delivery.headers['X-SIR-Signature'], timestamp: delivery.headers['X-SIR-Timestamp'], rawBody: encoder.encode(delivery.body) })
      if (answer.status >= 300) throw new Error(`fill: ${answer.status}`)
    }
  }
  await Promise.all(Array.from({ length: 50 }, fillOne))
  const seconds = await new Promise((resolve) => {
    let handled = 0
    let first
    webhooks.onAny(async function count () {
      first ??= performance.now()
      await Promise.resolve()
      if (++handled === events) resolve((performance.now() - first) / 1000)
    })
  })
  await webhooks.close()
  return events / seconds
}

if (flags.child !== undefined) {
  const [kind, target, mode, name] = JSON.parse(flags.child)
  const rate = await drainOnce(kind, target, mode, Number(flags.events), Number(flags.keys), name)
  process.stdout.write(JSON.stringify({ rate }))
  process.exit(0)
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

console.log(`# ordering drain, in process: ${flags.events} events, ${flags.keys} keys, ${flags.rounds} rounds; ${pinned ? 'pinned to the server CPU' : 'not pinned'}; node ${process.version}, load ${os.loadavg()[0].toFixed(1)}`)
let runs = 0
try {
  for (const kind of flags.inboxes.split(',')) {
    const target = kind === 'sqlite' ? undefined : await storeFor(kind)
    const rates = { off: [], on: [] }
    const ratios = []
    for (let round = 0; round < Number(flags.rounds); round++) {
      const modes = round % 2 === 0 ? ['off', 'on'] : ['on', 'off']
      const figures = {}
      for (const mode of modes) {
        const where = kind === 'sqlite' ? await storeFor('sqlite') : target
        const name = `drain_${process.pid}_${++runs}`
        const child = spawnSync(...nodeOnServerCpu(pinned, [new URL(import.meta.url).pathname, '--events', flags.events, '--keys', flags.keys, '--child', JSON.stringify([kind, where, mode, name])]), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
        if (child.status !== 0) throw new Error(`${kind} ${mode}: exit ${child.status}`)
        figures[mode] = JSON.parse(child.stdout).rate
        rates[mode].push(figures[mode])
      }
      ratios.push(figures.on / figures.off)
      console.log(`round ${round + 1} ${kind} off ${Math.round(figures.off)}/s  on ${Math.round(figures.on)}/s  on/off ${(figures.on / figures.off * 100).toFixed(0)} %`)
    }
    console.log(`${kind}: median off ${Math.round(median(rates.off))}/s, on ${Math.round(median(rates.on))}/s, on/off of medians ${(median(rates.on) / median(rates.off) * 100).toFixed(0)} %, median of round ratios ${(median(ratios) * 100).toFixed(0)} %`)
  }
} finally {
  await stopStores()
}
