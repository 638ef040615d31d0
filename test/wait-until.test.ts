// Issue 13: handlers kept alive on platforms that stop work with the response
// (waitUntil), idle(), and a receiver that can be built in a Worker's global scope.
// The same behaviour on the real runtimes: npm run test:runtimes.
import { test, type Test } from 'tap'
import { Webhooks, type WebhooksOptions } from '../src/index.js'
import { fetchHandler, type FetchHandlerOptions } from '../src/fetch/handler.js'
import { NO_WAIT_UNTIL_MESSAGE } from '../src/fetch/wait-until.js'
import { SECRET, actionCompleted, eventually, signedRequest, type Envelope } from './helpers/deliveries.js'
import { captureLogs } from './helpers/logs.js'

const URL_BASE = 'https://receiver.example/webhooks/sir'

function setUp (t: Test, options: Partial<WebhooksOptions> = {}, handlerOptions: FetchHandlerOptions = {}) {
  const logs = captureLogs()
  const webhooks = new Webhooks({ secret: SECRET, logger: logs.logger, ...options })
  t.teardown(() => webhooks.close())
  return { webhooks, logs, handle: fetchHandler(webhooks, handlerOptions) }
}

function delivery (event: Envelope | string = actionCompleted(), secret = SECRET): Request {
  const { body, headers } = signedRequest(event, { secret })
  return new Request(URL_BASE, { method: 'POST', headers, body })
}

/** A handler that runs until the test lets it finish. */
function heldHandler () {
  const started: string[] = []
  const finished: string[] = []
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  const handler = async (event: { id: string }): Promise<void> => {
    started.push(event.id)
    await gate
    finished.push(event.id)
  }
  return { handler, started, finished, release }
}

/** Whether a promise has settled, after letting pending callbacks run. */
async function hasSettled (promise: Promise<unknown>): Promise<boolean> {
  let settled = false
  promise.then(() => { settled = true }, () => { settled = true })
  await new Promise((resolve) => setTimeout(resolve, 20))
  return settled
}

test('a Worker ctx.waitUntil gets a promise that settles once the delivery\'s handlers have finished', async (t) => {
  const { webhooks, handle } = setUp(t)
  const held = heldHandler()
  webhooks.on('action.completed', held.handler)
  const kept: Array<Promise<unknown>> = []
  // A class instance with waitUntil as a method, as workerd's ExecutionContext is.
  class ExecutionContext {
    waitUntil (promise: Promise<unknown>): void {
      if (!(this instanceof ExecutionContext)) throw new TypeError('Illegal invocation')
      kept.push(promise)
    }

    passThroughOnException (): void {}
  }
  const event = actionCompleted()
  const response = await handle(delivery(event), { SIR_WEBHOOK_SECRET: SECRET }, new ExecutionContext())
  t.equal(response.status, 200)
  t.equal(kept.length, 1, 'one promise for the accepted delivery')
  const [handlersFinished] = kept as [Promise<unknown>]
  t.notOk(await hasSettled(handlersFinished), 'still pending while the handler runs')
  t.same(held.started, [event.id])
  held.release()
  await handlersFinished
  t.same(held.finished, [event.id], 'settled only after the handler finished')
})

test('the waitUntil option is used where the platform has a global one', async (t) => {
  const kept: Array<Promise<unknown>> = []
  const { webhooks, handle } = setUp(t, {}, { waitUntil: (promise) => { kept.push(promise) } })
  const held = heldHandler()
  webhooks.on('action.completed', held.handler)
  const event = actionCompleted()
  // Called as Next.js calls a route handler: the second argument is { params }.
  const response = await handle(delivery(event), { params: Promise.resolve({}) })
  t.equal(response.status, 200)
  t.equal(kept.length, 1)
  t.notOk(await hasSettled(kept[0] as Promise<unknown>))
  held.release()
  await kept[0]
  t.same(held.finished, [event.id])
})

test('the waitUntil option takes precedence over a ctx.waitUntil', async (t) => {
  const fromOption: Array<Promise<unknown>> = []
  const fromContext: Array<Promise<unknown>> = []
  const { webhooks, handle } = setUp(t, {}, { waitUntil: (promise) => { fromOption.push(promise) } })
  webhooks.on('action.completed', () => {})
  t.equal((await handle(delivery(), {}, { waitUntil: (promise: Promise<unknown>) => { fromContext.push(promise) } })).status, 200)
  t.equal(fromOption.length, 1)
  t.equal(fromContext.length, 0)
  await fromOption[0]
})

test('duplicates, refusals and events without handlers hand nothing to waitUntil', async (t) => {
  const kept: Array<Promise<unknown>> = []
  const { webhooks, handle } = setUp(t, {}, { waitUntil: (promise) => { kept.push(promise) } })
  webhooks.on('action.completed', () => {})
  const event = actionCompleted()
  const request = delivery(event)
  t.equal((await handle(request.clone())).status, 200)
  t.equal((await handle(request)).status, 200, 'the duplicate')
  t.equal((await handle(delivery(actionCompleted(), 'whsec_wrong'))).status, 401)
  t.equal((await handle(delivery(actionCompleted({ type: 'no.handler' })))).status, 200)
  t.equal(kept.length, 1, 'only the first, accepted delivery with a handler')
  await kept[0]
})

test('a handler that fails for good settles the waitUntil promise after its dead letter', async (t) => {
  const kept: Array<Promise<unknown>> = []
  const { webhooks, handle } = setUp(t, { retry: { attempts: 1 } }, { waitUntil: (promise) => { kept.push(promise) } })
  const deadLettered: string[] = []
  webhooks.on('action.completed', () => { throw new Error('boom') })
  webhooks.onDeadLetter((entry) => { deadLettered.push(entry.event.id) })
  const event = actionCompleted()
  t.equal((await handle(delivery(event))).status, 200)
  await kept[0]
  t.same(deadLettered, [event.id])
})

test('close() settles the waitUntil promise of handlers it cuts off', async (t) => {
  const kept: Array<Promise<unknown>> = []
  const { webhooks, handle } = setUp(t, { closeGraceMs: 50 }, { waitUntil: (promise) => { kept.push(promise) } })
  webhooks.on('action.completed', () => new Promise(() => {}))
  t.equal((await handle(delivery())).status, 200)
  await new Promise((resolve) => setTimeout(resolve, 20))
  await webhooks.close()
  t.ok(await hasSettled(kept[0] as Promise<unknown>))
})

test('a waitUntil that throws is logged; the delivery is still accepted and handled', async (t) => {
  const { webhooks, handle, logs } = setUp(t, {}, { waitUntil: () => { throw new Error('after() called outside a request scope') } })
  const handled: string[] = []
  webhooks.on('action.completed', (event) => { handled.push(event.id) })
  const event = actionCompleted()
  t.equal((await handle(delivery(event))).status, 200)
  await webhooks.idle()
  t.same(handled, [event.id])
  t.match(logs.entries(), [{ level: 50, msg: /waitUntil threw/ }])
})

test('the waitUntil option must be a function', async (t) => {
  const webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger })
  t.teardown(() => webhooks.close())
  t.throws(() => fetchHandler(webhooks, { waitUntil: 'after' as unknown as FetchHandlerOptions['waitUntil'] }), {
    message: /sir-webhooks: fetchHandler\(webhooks, options\): "waitUntil" must be a function/
  })
})

test('where work stops with the response and no waitUntil is given, the log says so once', async (t) => {
  const scope = globalThis as { EdgeRuntime?: string }
  scope.EdgeRuntime = 'edge-runtime'
  t.teardown(() => { delete scope.EdgeRuntime })
  const { webhooks, handle, logs } = setUp(t)
  webhooks.on('action.completed', () => {})
  t.equal((await handle(delivery())).status, 200)
  t.equal((await handle(delivery())).status, 200)
  const warnings = logs.entries().filter((entry) => entry.reason === 'NO_WAIT_UNTIL')
  t.equal(warnings.length, 1)
  t.equal(warnings[0]?.msg, NO_WAIT_UNTIL_MESSAGE)
  t.match(NO_WAIT_UNTIL_MESSAGE, /handle\(request, env, ctx\)/)
})

test('on a long-lived runtime (Node) no waitUntil is needed and nothing is logged about it', async (t) => {
  const { webhooks, handle, logs } = setUp(t)
  webhooks.on('action.completed', () => {})
  t.equal((await handle(delivery())).status, 200)
  await webhooks.idle()
  t.notOk(logs.text().includes('NO_WAIT_UNTIL'))
})

test('idle() resolves once every accepted event has finished, including retries', async (t) => {
  const { webhooks, handle } = setUp(t, { retry: { attempts: 3, minDelayMs: 5, maxDelayMs: 10 } })
  t.ok(await hasSettled(webhooks.idle()), 'at once when nothing was accepted')
  const held = heldHandler()
  let failures = 0
  webhooks.on('action.completed', held.handler)
  webhooks.on('action.completed', () => {
    failures += 1
    if (failures < 3) throw new Error('not yet')
  })
  const event = actionCompleted()
  t.equal((await handle(delivery(event))).status, 200)
  const idle = webhooks.idle()
  t.notOk(await hasSettled(idle), 'pending while a handler runs')
  held.release()
  await idle
  t.equal(failures, 3, 'after the retried handler succeeded')
  t.same(held.finished, [event.id])
})

test('idle() says so when the inbox cannot tell', async (t) => {
  const inbox = {
    start () {},
    accept: () => 'accepted' as const,
    close: async () => {}
  }
  const webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger, inbox })
  t.teardown(() => webhooks.close())
  await t.rejects(webhooks.idle(), { message: /idle\(\): this inbox cannot tell when its work is done/ })
})

test('building a receiver and a fetch handler uses no timer, random value or AbortController (Workers\' global scope)', async (t) => {
  const scope = globalThis as unknown as Record<string, unknown>
  const forbidden = ['setTimeout', 'setInterval', 'setImmediate', 'AbortController'] as const
  const saved = new Map(forbidden.map((name) => [name, scope[name]]))
  const getRandomValues = crypto.getRandomValues
  const randomUUID = crypto.randomUUID
  const refuse = (name: string) => function () { throw new Error(`${name} called in global scope`) }
  for (const name of forbidden) scope[name] = refuse(name)
  crypto.getRandomValues = refuse('crypto.getRandomValues') as typeof crypto.getRandomValues
  crypto.randomUUID = refuse('crypto.randomUUID') as typeof crypto.randomUUID
  let webhooks: Webhooks | undefined
  try {
    webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger })
    webhooks.on('action.completed', () => {})
    fetchHandler(webhooks, { path: '/webhooks/sir' })
  } finally {
    for (const [name, value] of saved) scope[name] = value
    crypto.getRandomValues = getRandomValues
    crypto.randomUUID = randomUUID
  }
  t.ok(webhooks, 'built without any of them')
  await webhooks?.close()
})

// Issue 20, item 23: the Web build (Web Crypto, the receiver Workers get) takes
// waitUntil from the handler's third argument, or from its second where a
// platform passes (request, context), inside `npm test` and not only in the
// runtime suite.
test('the Web build: waitUntil is taken from ctx (third argument) or from a context given second', async (t) => {
  const { Webhooks: WebWebhooks } = await import('../src/index-web.js')
  const webhooks = new WebWebhooks({ secret: SECRET, logger: captureLogs().logger })
  t.teardown(() => webhooks.close())
  const held = heldHandler()
  webhooks.on('action.completed', held.handler)
  const handle = fetchHandler(webhooks, { path: '/webhooks/sir' })
  const fromThird: Array<Promise<unknown>> = []
  const fromSecond: Array<Promise<unknown>> = []
  const third = actionCompleted()
  const second = actionCompleted()
  const answers = [
    await handle(delivery(third), { SIR_WEBHOOK_SECRET: SECRET }, { waitUntil: (promise: Promise<unknown>) => { fromThird.push(promise) } }),
    await handle(delivery(second), { waitUntil: (promise: Promise<unknown>) => { fromSecond.push(promise) } })
  ]
  t.same(answers.map((answer) => answer.status), [200, 200])
  t.equal(fromThird.length, 1, 'ctx.waitUntil got the first delivery\'s handlers')
  t.equal(fromSecond.length, 1, 'the second argument\'s waitUntil got the other\'s')
  const kept = [...fromThird, ...fromSecond]
  await eventually(() => held.started.length === 2, 5000, 'both handlers to start')
  for (const promise of kept) t.notOk(await hasSettled(promise), 'pending while its handler runs')
  held.release()
  await Promise.all(kept)
  t.same(held.finished.sort(), [third.id, second.id].sort(), 'each settled only after the handlers finished')
})
