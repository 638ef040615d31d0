import { test } from 'tap'
import { Webhooks, WebhookOptionsError, type DeadLetter, type Delivery, type Inbox } from '../src/index.js'
import { MemoryInbox } from '../src/core/memory-inbox.js'
import { SECRET, actionCompleted, eventually, signedRequest } from './helpers/deliveries.js'
import { captureLogs } from './helpers/logs.js'
import { otelForTests } from './helpers/otel.js'

/** The in-memory inbox, declared durable: what the registry sees of SQLite, Postgres or BullMQ. */
class DurableMemoryInbox extends MemoryInbox implements Inbox {
  readonly durable = true
}

function signedDelivery (event: ReturnType<typeof actionCompleted>): Delivery {
  const { body, headers } = signedRequest(event)
  return { contentType: headers['content-type'], signature: headers['x-sir-signature'], timestamp: headers['x-sir-timestamp'], rawBody: body }
}

function durableReceiver (): Webhooks<DurableMemoryInbox> {
  return new Webhooks({ secret: SECRET, logger: captureLogs().logger, inbox: new DurableMemoryInbox() })
}

test('with a durable inbox, a handler with no name is refused at registration, naming the fix', async (t) => {
  const webhooks = durableReceiver()
  t.teardown(() => webhooks.close())
  t.throws(() => webhooks.on('action.completed', () => {}), {
    name: 'WebhookOptionsError',
    message: /on\(\): a durable inbox records which handlers of an event succeeded by name.*\{ name: 'credit-tokens' \}/
  })
  t.throws(() => webhooks.onAny(async () => {}), /onAny\(\): a durable inbox/)
  t.doesNotThrow(() => webhooks.on('action.completed', () => {}, { name: 'credit-tokens' }))
  t.doesNotThrow(() => webhooks.on('action.failed', async function notifyPartner () {}))
})

test('with a durable inbox, two handlers of the same events may not share a name', async (t) => {
  const webhooks = durableReceiver()
  t.teardown(() => webhooks.close())
  webhooks.on('action.completed', () => {}, { name: 'credit' })
  t.throws(() => webhooks.on('action.completed', () => {}, { name: 'credit' }), /already named "credit"/)
  t.throws(() => webhooks.onAny(() => {}, { name: 'credit' }), /already named "credit"/, 'onAny handlers see every type')
  t.doesNotThrow(() => webhooks.on('campaign.paused', () => {}, { name: 'credit' }), 'another type, another event: no clash')
  const shared = async function audit (): Promise<void> {}
  webhooks.on('action.completed', shared)
  t.doesNotThrow(() => webhooks.on(['action.completed', 'action.failed'], shared), 'the same function again is the same handler')
})

test('with the in-memory inbox, unnamed handlers are fine and { name } names them in failures', async (t) => {
  const webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger, retry: { attempts: 1 } })
  t.teardown(() => webhooks.close())
  const deadLetters: DeadLetter[] = []
  const failures: string[] = []
  webhooks.on('action.completed', () => { throw new Error('down') }, { name: 'credit-tokens' })
  webhooks.on('action.completed', () => { throw new Error('down too') })
  webhooks.onError((_error, _event, info) => { failures.push(info.handler) })
  webhooks.onDeadLetter((deadLetter) => { deadLetters.push(deadLetter) })
  const answer = await webhooks.receive(signedDelivery(actionCompleted()))
  t.equal(answer.status, 200)
  await eventually(() => deadLetters.length === 2, 5000, 'both dead letters')
  t.same(failures.sort(), ['anonymous:action.completed', 'credit-tokens'])
  t.same(deadLetters.map((entry) => entry.handler).sort(), ['anonymous:action.completed', 'credit-tokens'])
})

test('a bad { name } is refused with a message naming it', async (t) => {
  const webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger })
  t.teardown(() => webhooks.close())
  for (const name of ['', ' padded ', 42]) {
    t.throws(() => webhooks.on('action.completed', () => {}, { name } as never), { name: 'WebhookOptionsError', message: /"name" must be a non-empty string/ })
  }
  t.throws(() => webhooks.on('action.completed', () => {}, 'credit' as never), /"options" must be an object/)
})

test('unknown receiver options are refused, naming the nearest valid one', async (t) => {
  const make = (options: Record<string, unknown>): unknown => new Webhooks({ secret: SECRET, ...options } as never)
  t.throws(() => make({ toleranceSecs: 5 }), {
    name: 'WebhookOptionsError',
    message: 'sir-webhooks: new Webhooks(options): unknown option "toleranceSecs"; did you mean "toleranceSeconds"?'
  })
  t.throws(() => make({ retry: { attempt: 3 } }), /new Webhooks\(options\.retry\): unknown option "attempt"; did you mean "attempts"\?/)
  t.throws(() => make({ dedupe: { ttl: 5 } }), /unknown option "ttl"/)
  t.throws(() => make({ frobnicate: true }), /unknown option "frobnicate"; valid options are "secret", "toleranceSeconds"/)
  t.ok(new WebhookOptionsError('x') instanceof Error)
})

test('an inbox started by a second receiver is refused with a WebhookOptionsError', async (t) => {
  const inbox = new MemoryInbox()
  const first = new Webhooks({ secret: SECRET, logger: captureLogs().logger, inbox })
  t.teardown(() => first.close())
  t.throws(() => new Webhooks({ secret: SECRET, logger: captureLogs().logger, inbox }), {
    name: 'WebhookOptionsError',
    message: /an inbox belongs to one receiver/
  })
})

test('issue 21.8: the durable-inbox refusal of an unnamed onAny handler suggests onAny(handler, { name })', async (t) => {
  const webhooks = durableReceiver()
  t.teardown(() => webhooks.close())
  const error = t.throws(() => webhooks.onAny(async () => {})) as Error
  t.match(error.message, /Give it one: webhooks\.onAny\(handler, \{ name: 'audit-events' \}\), or a named function \(async function auditEvents/)
  t.notMatch(error.message, /webhooks\.on\(type/, 'no on(type, …) advice for onAny')
  t.doesNotThrow(() => webhooks.onAny(async () => {}, { name: 'audit-events' }), 'the suggested call is accepted')
})

test('issue 21.8: unnamed handlers get distinct labels in metrics, logs and dead letters', async (t) => {
  const otel = otelForTests()
  t.teardown(() => otel.shutdown())
  const logs = captureLogs()
  const webhooks = new Webhooks({ secret: SECRET, logger: logs.logger, retry: { attempts: 1 }, telemetry: { meterProvider: otel.meterProvider } })
  t.teardown(() => webhooks.close())
  const deadLetters: string[] = []
  webhooks.on('action.completed', () => {})
  webhooks.on('action.completed', () => { throw new Error('second one fails') })
  webhooks.on(['action.completed', 'action.failed'], async () => {})
  webhooks.onAny(() => {})
  webhooks.onDeadLetter((deadLetter) => { deadLetters.push(deadLetter.handler ?? '') })
  t.equal((await webhooks.receive(signedDelivery(actionCompleted()))).status, 200)
  await eventually(() => deadLetters.length === 1, 5000, 'the failing handler is dead-lettered')
  await webhooks.idle()
  const labels = (await otel.points('sir_webhooks.handler.duration')).map((point) => point.attributes['sir_webhooks.handler']).sort()
  t.same(labels, ['anonymous:*', 'anonymous:action.completed', 'anonymous:action.completed#2', 'anonymous:action.completed,action.failed'],
    'one label per registration, named after what it handles')
  t.same(deadLetters, ['anonymous:action.completed#2'])
})

test('issue 21.13: unknown handler options are refused, naming the option and the known ones', async (t) => {
  const webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger })
  t.teardown(() => webhooks.close())
  t.throws(() => webhooks.on('action.completed', async function credit () {}, { name: 'credit', retries: 3 } as never), {
    name: 'WebhookOptionsError',
    message: /^sir-webhooks: on\(\): unknown handler option "retries"; the handler options are "name", "concurrency", "rate" \(/
  })
  t.throws(() => webhooks.onAny(() => {}, { nmae: 'audit' } as never), /onAny\(\): unknown handler option "nmae"; the handler options are "name", "concurrency", "rate"/)
  t.doesNotThrow(() => webhooks.on('action.completed', () => {}, { name: 'credit' }))
  t.doesNotThrow(() => webhooks.on('action.failed', () => {}, {}))
})
