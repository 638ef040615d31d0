// In-process cost of decide() + dispatch per delivery: `node bench/in-process.js <dist dir>`, for an A/B of two builds (no sockets, so a loaded machine disturbs it less than the HTTP benchmark).
import { createHmac, randomUUID } from 'node:crypto'
const dist = process.argv[2]
const { Webhooks } = await import(`${dist}/index.js`)
const secret = 'whsec_micro'
const silent = { child () { return silent }, debug () {}, info () {}, warn () {}, error () {} }
const webhooks = new Webhooks({ secret, logger: silent, maxQueueSize: 1_000_000 })
let handled = 0
webhooks.on('action.completed', () => { handled++ })
const N = 60000
const deliveries = []
const ts = String(Math.floor(Date.now() / 1000))
for (let i = 0; i < N; i++) {
  const body = Buffer.from(JSON.stringify({ id: randomUUID(), type: 'action.completed', createdAt: new Date().toISOString(), data: { actionId: 'a' + i, tokensDistributed: 50, pad: 'x'.repeat(200) } }))
  const signature = 'sha256=' + createHmac('sha256', secret).update(ts + '.').update(body).digest('hex')
  deliveries.push({ contentType: 'application/json', signature, timestamp: ts, rawBody: body })
}
async function run (from, to) {
  for (let i = from; i < to; i++) {
    const r = webhooks.decide(deliveries[i])
    if (r.status !== 200) throw new Error('status ' + r.status)
    if (i % 500 === 0) await new Promise((resolve) => setImmediate(resolve))
  }
  while (handled < to) await new Promise((resolve) => setImmediate(resolve))
}
await run(0, 20000) // warm-up
const cpu = process.cpuUsage()
const t0 = process.hrtime.bigint()
await run(20000, N)
const us = process.cpuUsage(cpu)
const wall = Number(process.hrtime.bigint() - t0) / 1e3
console.log(JSON.stringify({ dist, cpuUsPer: (us.user + us.system) / (N - 20000), wallUsPer: wall / (N - 20000) }))
await webhooks.close()
