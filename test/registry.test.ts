import { test } from 'tap'
import { Webhooks, WebhookOptionsError, type DeadLetter, type Delivery, type Inbox } from '../src/index.js'
import { MemoryInbox } from '../src/core/memory-inbox.js'
import { SECRET, actionCompleted, eventually, signedRequest } from './helpers/deliveries.js'
import { captureLogs } from './helpers/logs.js'

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
  t.same(failures.sort(), ['anonymous', 'credit-tokens'])
  t.same(deadLetters.map((entry) => entry.handler).sort(), ['anonymous', 'credit-tokens'])
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
