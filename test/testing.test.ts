import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { pino } from 'pino'
import { eventNames, verify, Webhooks, type AnyEvent } from '../src/index.js'
import sirWebhooks from '../src/fastify/plugin.js'
import { createDelivery, createEvent, injectDelivery, sendDelivery, SIR_USER_AGENT } from '../src/testing/index.js'

const secret = 'whsec_dGVzdC1raXQtc2VjcmV0'

/** A Fastify app with the plugin and a handler that records what it is given. */
async function appWithHandler (t: Test, path?: string) {
  const seen: AnyEvent[] = []
  const webhooks = new Webhooks({ secret, logger: pino({ level: 'silent' }) })
  webhooks.onAny((event) => { seen.push(event) })
  const app = Fastify({ logger: false })
  await app.register(sirWebhooks, path === undefined ? { webhooks } : { webhooks, path })
  t.teardown(() => app.close())
  return { app, seen, webhooks }
}

/** Handlers run after the 200; wait for them rather than for a fixed time. */
async function until (condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

t.test('createEvent makes a well-formed envelope for each of the 14 documented types', async (t) => {
  t.equal(eventNames.length, 14)
  const ids = new Set<string>()
  for (const type of eventNames) {
    const event = createEvent(type)
    t.equal(event.type, type)
    t.match(event.id, /^evt_[0-9a-f]{24}$/, `${type} has an evt_ id`)
    t.ok(!Number.isNaN(Date.parse(event.createdAt ?? '')), `${type} has an ISO createdAt`)
    t.type(event.data, 'object')
    t.ok(Object.keys(event.data).length > 0, `${type} has realistic default data`)
    ids.add(event.id)
  }
  t.equal(ids.size, 14, 'each event gets a fresh id')
})

t.test('createEvent gives action.completed its documented fields, and merges data over the defaults', async (t) => {
  const event = createEvent('action.completed')
  t.type(event.data.actionId, 'string')
  t.type(event.data.tokensDistributed, 'number')
  const custom = createEvent('action.completed', { tokensDistributed: 7 }, { id: 'evt_fixed', createdAt: new Date('2026-05-10T09:12:00Z') })
  t.equal(custom.id, 'evt_fixed')
  t.equal(custom.createdAt, '2026-05-10T09:12:00.000Z')
  t.equal(custom.data.tokensDistributed, 7)
  t.type(custom.data.actionId, 'string', 'fields not given keep their default')
})

t.test('createEvent refuses a type that is not documented, naming it', async (t) => {
  // @ts-expect-error a misspelt type does not compile either
  t.throws(() => createEvent('action.complete'), { message: /"type" must be one of the documented event types, got "action.complete"/ })
})

t.test('createDelivery gives the body and headers exactly as SIR Giving sends them', async (t) => {
  const event = createEvent('action.completed')
  const { body, headers } = createDelivery(event, { secret, timestamp: 1_778_404_320 })
  t.equal(body, JSON.stringify(event), 'compact JSON')
  t.same(Object.keys(headers).sort(), ['Content-Type', 'User-Agent', 'X-SIR-Signature', 'X-SIR-Timestamp'])
  t.equal(headers['Content-Type'], 'application/json')
  t.equal(headers['User-Agent'], 'SIRGiving-Webhooks/1.0')
  t.equal(SIR_USER_AGENT, 'SIRGiving-Webhooks/1.0')
  t.equal(headers['X-SIR-Timestamp'], '1778404320')
  t.match(headers['X-SIR-Signature'], /^sha256=[0-9a-f]{64}$/)
  const checked = verify({ secret, rawBody: body, signature: headers['X-SIR-Signature'], timestamp: headers['X-SIR-Timestamp'], now: 1_778_404_320_000 })
  t.equal(checked.ok, true, 'the core verifies it')
})

t.test('createDelivery signs now by default, takes a Date, and sends a string body as it is', async (t) => {
  const before = Math.floor(Date.now() / 1000)
  const fresh = createDelivery(createEvent('campaign.paused'), { secret })
  t.ok(Number(fresh.headers['X-SIR-Timestamp']) >= before)
  const dated = createDelivery('{"id":"evt_1","type":"x","data":{}}\n', { secret, timestamp: new Date(1_700_000_000_500) })
  t.equal(dated.headers['X-SIR-Timestamp'], '1700000000')
  t.equal(dated.body, '{"id":"evt_1","type":"x","data":{}}\n')
  // @ts-expect-error the secret is required
  t.throws(() => createDelivery(createEvent('campaign.paused'), {}), { message: /"secret" must be a non-empty string/ })
})

t.test('injectDelivery: a user test of their own handler in three lines', async (t) => {
  const { app, seen } = await appWithHandler(t)
  const event = createEvent('action.completed', { tokensDistributed: 12 })
  const response = await injectDelivery(app, event, { secret })
  t.equal(response.statusCode, 200)
  t.same(response.json(), { received: true })
  await until(() => seen.length === 1)
  t.same(seen[0], event, 'the handler got the event as sent')
})

t.test('injectDelivery honours path, a wrong secret is refused, a replay is a duplicate', async (t) => {
  const { app, seen } = await appWithHandler(t, '/hooks/sir')
  const event = createEvent('token_pool.depleted')
  t.equal((await injectDelivery(app, event, { secret, path: '/hooks/sir' })).statusCode, 200)
  const replay = await injectDelivery(app, event, { secret, path: '/hooks/sir' })
  t.same(replay.json(), { received: true, duplicate: true })
  const forged = await injectDelivery(app, createEvent('token_pool.depleted'), { secret: 'whsec_wrong', path: '/hooks/sir' })
  t.equal(forged.statusCode, 401)
  t.equal(forged.json().error.code, 'SIGNATURE_MISMATCH')
  const stale = await injectDelivery(app, createEvent('token_pool.depleted'), { secret, path: '/hooks/sir', timestamp: Math.floor(Date.now() / 1000) - 3600 })
  t.equal(stale.json().error.code, 'TIMESTAMP_OUT_OF_RANGE')
  const unencoded = await injectDelivery(app, createEvent('token_pool.depleted'), { secret, path: '/hooks/sir', headers: { 'Content-Type': 'text/plain' } })
  t.equal(unencoded.statusCode, 415, 'headers can be overridden')
  await until(() => seen.length === 1)
  t.equal(seen.length, 1)
})

t.test('sendDelivery POSTs to any URL over fetch', async (t) => {
  const { app, seen } = await appWithHandler(t)
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  const event = createEvent('api_key.expiring')
  const answer = await sendDelivery(`${address}/webhooks/sir`, event, { secret })
  t.equal(answer.status, 200)
  t.same(JSON.parse(answer.body), { received: true })
  t.match(answer.headers['content-type'], /application\/json/)
  t.ok(answer.latencyMs >= 0)
  await until(() => seen.length === 1)
  t.equal(seen[0]?.id, event.id)
  const refused = await sendDelivery(`${address}/webhooks/sir`, createEvent('api_key.expiring'), { secret: 'whsec_wrong' })
  t.equal(refused.status, 401)
})
