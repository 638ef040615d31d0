// npm run demo: a receiver under pressure and the simulated SIR Giving sender.
// The receiver (the Fastify plugin) has a tiny queue and handlers that are slow
// for some event types, so it answers 503 while it is busy; the sender retries
// with backoff and sends some events twice. At the end: what the receiver
// verified, deduplicated and handled, and the sender's own summary.
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import { pino } from 'pino'
import { Webhooks } from '../dist/index.js'
import { sirWebhooks } from '../dist/fastify/plugin.js'
import { formatSummary, simulate } from '../dist/testing/index.js'

const secret = 'whsec_' + randomBytes(18).toString('base64url')
const SLOW_MS = 400
const FAST_MS = 20
const isSlow = (type) => type.startsWith('token_pool') || type.startsWith('campaign.')

const webhooks = new Webhooks({
  secret,
  logger: pino({ level: 'silent' }),
  // Small on purpose: a burst fills it and the receiver answers 503 + Retry-After.
  maxQueueSize: 5,
  concurrency: 3,
  retryAfterSeconds: 1
})

const handled = new Map()
webhooks.onAny(async function simulateWork (event) {
  await new Promise((resolve) => setTimeout(resolve, isSlow(event.type) ? SLOW_MS : FAST_MS))
  handled.set(event.id, (handled.get(event.id) ?? 0) + 1)
})

// What the receiver answered, by code, read from its own answers.
const answers = new Map()
const app = Fastify({ logger: false })
app.addHook('onSend', async (_request, reply, payload) => {
  let code = 'ACCEPTED'
  try {
    const answer = JSON.parse(payload)
    if (answer.duplicate === true) code = 'DUPLICATE'
    else if (answer.error !== undefined) code = answer.error.code
  } catch {
    code = `HTTP ${reply.statusCode}`
  }
  answers.set(code, (answers.get(code) ?? 0) + 1)
  return payload
})
await app.register(sirWebhooks, { webhooks })
const address = await app.listen({ port: 0, host: '127.0.0.1' })
const url = `${address}/webhooks/sir`

console.log(`receiver  ${url}`)
console.log(`          queue of 5, 3 handlers at a time; token_pool.* and campaign.* handlers take ${SLOW_MS} ms, the rest ${FAST_MS} ms`)
console.log('sender    40 events at 20/s, 15% sent twice, 10% out of order; retries after 250ms, 500ms, 1s, 2s, 4s')
console.log('')

const showProgress = process.stderr.isTTY === true
const result = await simulate({
  url,
  secret,
  events: 40,
  rate: 20,
  duplicates: 0.15,
  outOfOrder: 0.1,
  retrySchedule: [250, 500, 1000, 2000, 4000],
  // A fixed plan (types, order, duplicates) so every run shows the same story; ids are fresh.
  seed: 2026,
  onProgress: showProgress
    ? (progress) => process.stderr.write(`\rsending… ${progress.finished}/${progress.planned} done, ${progress.delivered} delivered, ${progress.attempts} attempts`)
    : undefined
})
if (showProgress) process.stderr.write('\n')

// Closing drains: every accepted event finishes before the counts are read.
await app.close()

const count = (code) => answers.get(code) ?? 0
const refused503 = count('QUEUE_FULL') + count('CLOSING') + count('INBOX_UNAVAILABLE')
const verified = count('ACCEPTED') + count('DUPLICATE') + refused503
const retriedAfter503 = result.deliveries.filter((delivery) =>
  delivery.outcome === 'delivered' && delivery.attempts.some((attempt) => attempt.status === 503)).length
const handledTwice = [...handled.values()].filter((times) => times > 1).length

const rows = [
  ['verified', `${verified} deliveries had a good signature and timestamp`],
  ['refused 503', `${refused503} while the queue was full (not recorded as seen, so the retry counts)`],
  ['retried after 503', `${retriedAfter503} deliveries got a 503 first and were accepted on a later attempt`],
  ['deduplicated', `${count('DUPLICATE')} deliveries of an id already accepted: 200, not handled again`],
  ['handled', `${handled.size} events, ${handledTwice === 0 ? 'each exactly once' : `${handledTwice} more than once`}`]
]
const width = Math.max(...rows.map(([label]) => label.length))
console.log('the receiver')
for (const [label, text] of rows) console.log(`  ${label.padEnd(width)}  ${text}`)
console.log('')
console.log('the sender')
console.log(formatSummary(result.summary).split('\n').map((line) => '  ' + line).join('\n'))
