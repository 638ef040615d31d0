import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import t, { type Test } from 'tap'
import { verify } from '../../src/index.js'
import {
  createEvent,
  deliverWithRetries,
  exponentialSchedule,
  DEFAULT_RETRY_SCHEDULE_MS,
  formatSummary,
  percentile,
  planDeliveries,
  simulate,
  summarize,
  type DeliveryRecord
} from '../../src/testing/index.js'
import type { KnownEvent } from '../../src/index.js'
import { planEvents } from '../../src/testing/plan-events.js'
import { seededRandom } from '../../src/testing/random.js'
import { serveForTest } from '../helpers/serve.js'

const secret = 'whsec_c2VuZGVyLXRlc3Q'

interface Received { timestamp: string, signature: string, body: string }

/** A plain node:http server that answers from a script, then 200, and records what it got. */
async function scripted (t: Test, answers: Array<number | 'hang'>) {
  const received: Received[] = []
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      received.push({
        timestamp: String(request.headers['x-sir-timestamp']),
        signature: String(request.headers['x-sir-signature']),
        body: Buffer.concat(chunks).toString('utf8')
      })
      const answer = answers.shift() ?? 200
      if (answer === 'hang') return
      response.writeHead(answer, answer === 503 ? { 'retry-after': '5', 'content-type': 'application/json' } : { 'content-type': 'application/json' })
      response.end(answer === 503 ? '{"error":{"code":"QUEUE_FULL"}}' : '{"received":true}')
    })
  })
  return { url: `${await serveForTest(t, server)}/webhooks/sir`, received }
}

t.test('the default schedule is exponential: 1 s doubling, five retries', async (t) => {
  t.same(DEFAULT_RETRY_SCHEDULE_MS, [1000, 2000, 4000, 8000, 16000])
  t.same(exponentialSchedule(250, 3), [250, 500, 1000])
})

t.test('non-2xx answers are retried after each delay of the schedule, each attempt signed afresh', async (t) => {
  const target = await scripted(t, [503, 500, 200])
  const event = createEvent('action.completed')
  const result = await deliverWithRetries(event, { url: target.url, secret, retrySchedule: [50, 100, 1000] })
  t.equal(result.outcome, 'delivered')
  t.same(result.attempts.map((attempt) => attempt.status), [503, 500, 200])
  t.equal(result.attempts[0]?.retryAfter, '5')
  t.equal(result.attempts[0]?.error, 'QUEUE_FULL', 'the receiver\'s refusal code is kept')
  t.equal(target.received.length, 3)
  for (const request of target.received) {
    t.equal(request.body, JSON.stringify(event), 'the same body every time')
    t.equal(verify({ secret, rawBody: request.body, signature: request.signature, timestamp: request.timestamp }).ok, true, 'every attempt verifies')
  }
  const times = result.attempts.map((attempt) => Date.parse(attempt.sentAt))
  t.ok((times[1] ?? 0) - (times[0] ?? 0) >= 50)
  t.ok((times[2] ?? 0) - (times[1] ?? 0) >= 100)
})

t.test('after the last delay the delivery is given up', async (t) => {
  const target = await scripted(t, [500, 500, 500, 500])
  const result = await deliverWithRetries(createEvent('action.failed'), { url: target.url, secret, retrySchedule: [10, 10] })
  t.equal(result.outcome, 'given_up')
  t.equal(result.attempts.length, 3)
})

t.test('no answer within the timeout is a failed attempt, then retried', async (t) => {
  const target = await scripted(t, ['hang', 200])
  const result = await deliverWithRetries(createEvent('action.failed'), { url: target.url, secret, retrySchedule: [10], timeoutMs: 200 })
  t.equal(result.outcome, 'delivered')
  t.same(result.attempts.map((attempt) => [attempt.status, attempt.error]), [[null, 'timeout'], [200, undefined]])
})

t.test('a refused connection is recorded by its code', async (t) => {
  // A port that was free a moment ago: nothing listens there now.
  const port = await new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0))
    })
  })
  const url = `http://127.0.0.1:${port}/webhooks/sir`
  const result = await deliverWithRetries(createEvent('action.failed'), { url, secret, retrySchedule: [] })
  t.equal(result.outcome, 'given_up')
  t.equal(result.attempts[0]?.error, 'ECONNREFUSED')
})

t.test('skewSeconds moves the signing clock', async (t) => {
  const target = await scripted(t, [])
  const before = Math.floor(Date.now() / 1000)
  await deliverWithRetries(createEvent('action.failed'), { url: target.url, secret, skewSeconds: -600 })
  const signedAt = Number(target.received[0]?.timestamp)
  t.ok(signedAt <= before - 599 && signedAt >= before - 601)
})

t.test('an abort stops the retries: the delivery ends cancelled', async (t) => {
  const target = await scripted(t, [503, 503, 503])
  const controller = new AbortController()
  const started = Date.now()
  setTimeout(() => controller.abort(), 100)
  const result = await deliverWithRetries(createEvent('action.failed'), { url: target.url, secret, retrySchedule: [10_000, 10_000], signal: controller.signal })
  t.equal(result.outcome, 'cancelled')
  t.ok(Date.now() - started < 5000, 'it did not wait out the delay')
})

t.test('planDeliveries: repeatable with a seed; no shuffling or duplicates when both shares are 0', async (t) => {
  const events = Array.from({ length: 8 }, () => createEvent('campaign.paused') as KnownEvent)
  const identity = planDeliveries(events, 0, 0, seededRandom(1))
  t.same(identity.map((planned) => planned.index), [0, 1, 2, 3, 4, 5, 6, 7])
  const first = planDeliveries(events, 0.5, 0.5, seededRandom(42)).map((planned) => [planned.index, planned.duplicate])
  const second = planDeliveries(events, 0.5, 0.5, seededRandom(42)).map((planned) => [planned.index, planned.duplicate])
  t.same(first, second)
  const all = planDeliveries(events, 1, 0, seededRandom(3))
  t.equal(all.length, 16)
  for (const planned of all.filter((entry) => entry.duplicate)) {
    const original = all.findIndex((entry) => entry.index === planned.index && !entry.duplicate)
    t.ok(all.indexOf(planned) > original, 'a duplicate comes after its original')
  }
})

t.test('planEvents: a share of actions completed is reversed a little later, same actionId, later createdAt; repeatable with a seed', async (t) => {
  const types = ['action.completed', 'action.reversed', 'campaign.paused'] as const
  const events = planEvents(60, types, Date.UTC(2026, 4, 10), 100, seededRandom(5))
  const shape = (list: KnownEvent[]): unknown[] => list.map((e) => [e.type, e.createdAt, e.type === 'action.completed' ? e.data.tokensDistributed : null])
  t.same(shape(planEvents(60, types, Date.UTC(2026, 4, 10), 100, seededRandom(5))), shape(events), 'the same seed, the same plan')
  const completions = new Map(events.flatMap((e, index) => e.type === 'action.completed' ? [[e.data.actionId, index] as const] : []))
  const actionOf = (e: KnownEvent): string => (e.data as { actionId: string }).actionId
  const reversals = events.flatMap((e, index): Array<[number, number]> => e.type === 'action.reversed' && completions.has(actionOf(e)) ? [[index, completions.get(actionOf(e)) as number]] : [])
  t.ok(reversals.length >= 5, `reversals of an action completed before (${reversals.length} of ${completions.size} actions)`)
  for (const [at, completedAt] of reversals) t.ok(at - completedAt >= 1 && at - completedAt <= 3, 'one to three events after its completion, so later created')
  const tokens = new Set(events.flatMap((e) => e.type === 'action.completed' ? [e.data.tokensDistributed] : []))
  t.ok(tokens.size > 1, 'completions credit different amounts')
  const alone = planEvents(30, ['action.completed', 'campaign.paused'], 0, 100, seededRandom(5))
  t.equal(new Set(alone.flatMap((e) => e.type === 'action.completed' ? [e.data.actionId] : [])).size, alone.filter((e) => e.type === 'action.completed').length,
    'without action.reversed among the types, every action is its own')
})

t.test('simulate validates its options, naming them', async (t) => {
  await t.rejects(simulate({ url: 'http://127.0.0.1:1', secret, events: 0 }), { message: /"events" must be a positive integer/ })
  await t.rejects(simulate({ url: 'http://127.0.0.1:1', secret, duplicates: 2 }), { message: /"duplicates" must be a number from 0 to 1/ })
  await t.rejects(simulate({ url: 'http://127.0.0.1:1', secret, rate: -1 }), { message: /"rate" must be a positive number/ })
  await t.rejects(simulate({ url: 'http://127.0.0.1:1', secret, types: [] }), { message: /"types" must name at least one/ })
})

t.test('simulate reports progress and a history; its summary adds up', async (t) => {
  const target = await scripted(t, [503])
  const progress: number[] = []
  const result = await simulate({
    url: target.url,
    secret,
    events: 5,
    rate: 100,
    duplicates: 0,
    outOfOrder: 0,
    retrySchedule: [20],
    types: ['action.completed'],
    onProgress: (update) => progress.push(update.finished)
  })
  t.equal(result.deliveries.length, 5)
  t.ok(result.deliveries.every((delivery) => delivery.type === 'action.completed' && delivery.deliveryId.startsWith('dlv_')))
  t.equal(result.summary.delivered, 5)
  t.equal(result.summary.retried, 1)
  t.equal(result.summary.attempts, 6)
  t.same(result.summary.answers, { 200: 5, 503: 1 })
  t.equal(progress.at(-1), 5, 'the last progress report has every delivery finished')
})

t.test('percentile is nearest-rank; summarize and formatSummary count what happened', async (t) => {
  t.equal(percentile([], 50), null)
  t.equal(percentile([5], 99), 5)
  t.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50), 5)
  t.equal(percentile([10, 9, 8, 7, 6, 5, 4, 3, 2, 1], 99), 10)
  const attempt = (status: number | null, latencyMs: number) => ({ attempt: 1, sentAt: new Date().toISOString(), timestamp: '1', status, latencyMs, ...(status === null ? { error: 'timeout' } : {}) })
  const deliveries: DeliveryRecord[] = [
    { deliveryId: 'dlv_1', eventId: 'evt_1', type: 'x', createdAt: '2026-05-10T09:12:00Z', data: {}, duplicate: false, outOfOrder: false, outcome: 'delivered', attempts: [attempt(200, 4)] },
    { deliveryId: 'dlv_2', eventId: 'evt_1', type: 'x', createdAt: '2026-05-10T09:12:00Z', data: {}, duplicate: true, outOfOrder: false, outcome: 'delivered', attempts: [attempt(null, 500), attempt(200, 6)] },
    { deliveryId: 'dlv_3', eventId: 'evt_2', type: 'x', createdAt: '2026-05-10T09:12:00Z', data: {}, duplicate: false, outOfOrder: true, outcome: 'given_up', attempts: [attempt(401, 2)] }
  ]
  const summary = summarize(deliveries, 1500)
  t.match(summary, { deliveries: 3, events: 2, duplicates: 1, outOfOrder: 1, delivered: 2, retried: 1, givenUp: 1, attempts: 4 })
  t.same(summary.answers, { 200: 2, 401: 1, timeout: 1 })
  t.same(summary.latencyMs, { p50: 4, p99: 6, max: 6 }, 'timeouts are not latencies')
  const table = formatSummary(summary)
  t.match(table, /^deliveries\s+3 \(2 events, 1 duplicates, 1 out of order\)$/m)
  t.match(table, /^given up\s+1$/m)
  t.match(table, /^answers\s+200×2 {2}401×1 {2}timeout×1$/m)
  t.match(table, /^latency p99\s+6\.0 ms$/m)
  t.match(table, /^duration\s+1\.5 s$/m)
})
