import { test } from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyBaseLogger } from 'fastify'
import fastifyRawBody from 'fastify-raw-body'
import { MemoryInbox } from '../src/core/memory-inbox.js'
import { Webhooks, type AcceptOutcome, type Inbox, type InboxRuntime } from '../src/index.js'
import sirWebhooks, { NO_REQUEST_TIMEOUT_MESSAGE } from '../src/fastify/plugin.js'
import { captureLogs } from './helpers/logs.js'
import { SECRET, actionCompleted, eventually, gate, signedRequest, type Envelope } from './helpers/deliveries.js'

function injectDelivery (app: ReturnType<typeof Fastify>, url: string, body: Envelope | Uint8Array | string, options: Parameters<typeof signedRequest>[1] = {}) {
  const request = signedRequest(body, options)
  return app.inject({ method: 'POST', url, payload: Buffer.from(request.body), headers: request.headers })
}

test('mounts under the prefix given to register, at the default or a chosen path', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  const webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger })
  await app.register(sirWebhooks, { webhooks, prefix: '/partners', path: '/sir' })
  t.equal((await injectDelivery(app, '/partners/sir', actionCompleted())).statusCode, 200)
  t.equal((await injectDelivery(app, '/sir', actionCompleted())).statusCode, 404, 'not outside the prefix')

  const other = Fastify()
  t.teardown(() => other.close())
  await other.register(sirWebhooks, { secret: SECRET })
  t.equal((await injectDelivery(other, '/webhooks/sir', actionCompleted())).statusCode, 200, 'default path /webhooks/sir')

  // path '/' under a prefix: Fastify registers the prefix with and without its
  // trailing slash, and both are the webhook's route.
  const root = Fastify()
  t.teardown(() => root.close())
  await root.register(sirWebhooks, { secret: SECRET, prefix: '/hooks', path: '/' })
  t.equal((await injectDelivery(root, '/hooks', actionCompleted())).statusCode, 200, '/hooks')
  t.equal((await injectDelivery(root, '/hooks/', actionCompleted())).statusCode, 200, '/hooks/')
  t.equal((await injectDelivery(root, '/hook%73', actionCompleted())).statusCode, 404, 'percent-encoded: not the path as sent')
})

test('app.sirWebhooks is the receiver; passing `secret` builds one that logs through the app', async (t) => {
  const logs = captureLogs()
  const app = Fastify({ loggerInstance: logs.logger as FastifyBaseLogger })
  t.teardown(() => app.close())
  await app.register(sirWebhooks, { secret: SECRET, receiver: { maxQueueSize: 3 } })
  t.ok(app.sirWebhooks instanceof Webhooks)
  t.equal(app.sirWebhooks.options.maxQueueSize, 3)
  const handled: string[] = []
  app.sirWebhooks.on('action.completed', (event, context) => {
    context.log.info('crediting the partner')
    handled.push(event.data.actionId)
  })
  t.equal((await injectDelivery(app, '/webhooks/sir', actionCompleted())).statusCode, 200)
  await eventually(() => handled.length === 1)
  t.ok(logs.entries().some((entry) => entry.msg === 'crediting the partner' && (entry.event as { type?: string }).type === 'action.completed'), 'the handler\'s child logger carries the event')
})

test('registration refuses wrong options with a message naming the option', async (t) => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['neither', {}, /needs "webhooks" \(a Webhooks instance\) or "secret"/],
    ['both', { secret: SECRET, webhooks: new Webhooks({ secret: SECRET }) }, /either "webhooks" or "secret"/],
    ['not a receiver', { webhooks: {} }, /"webhooks" must be a Webhooks instance/],
    ['bad path', { secret: SECRET, path: 'sir' }, /"path" must be a string starting with "\/"/],
    ['bad receiver option', { secret: SECRET, receiver: { concurrency: 0 } }, /sir-webhooks: "concurrency" must be a positive integer, got 0/],
    ['misspelt option', { secret: SECRET, pth: '/sir' }, /the Fastify plugin: unknown option "pth"; did you mean "path"\?/],
    ['misspelt receiver option', { secret: SECRET, receiver: { toleranceSecs: 5 } }, /unknown option "toleranceSecs"; did you mean "toleranceSeconds"\?/],
    ['bad decorator', { secret: SECRET, decorator: 'sir webhooks' }, /"decorator" must be a JavaScript identifier/]
  ]
  for (const [name, options, message] of cases) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(sirWebhooks, options); await app.ready() }, message, name)
    await app.close()
  }
})

test('registered twice (sandbox and live, two secrets): each registration has its own route and decorator', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  const live = new Webhooks({ secret: SECRET, logger: captureLogs().logger })
  await app.register(sirWebhooks, { webhooks: live, path: '/sir/live' })
  await app.register(sirWebhooks, { secret: 'whsec_sandbox', path: '/sir/sandbox', decorator: 'sirWebhooksSandbox' })
  const sandbox = (app as unknown as { sirWebhooksSandbox: Webhooks }).sirWebhooksSandbox
  t.equal(app.sirWebhooks, live)
  t.ok(sandbox instanceof Webhooks)
  t.not(sandbox, live)
  const seen: string[] = []
  live.on('action.completed', () => { seen.push('live') })
  sandbox.on('action.completed', () => { seen.push('sandbox') })
  t.equal((await injectDelivery(app, '/sir/live', actionCompleted())).statusCode, 200)
  t.equal((await injectDelivery(app, '/sir/sandbox', actionCompleted(), { secret: 'whsec_sandbox' })).statusCode, 200)
  t.equal((await injectDelivery(app, '/sir/sandbox', actionCompleted())).statusCode, 401, 'the live secret does not open the sandbox')
  await eventually(() => seen.length === 2)
  t.same(seen.sort(), ['live', 'sandbox'])
  await app.close()
  t.equal(sandbox.closing, true, 'app.close() closes both receivers')
  t.equal(live.closing, true)
})

test('a second registration without its own decorator name is refused with the fix', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(sirWebhooks, { secret: SECRET })
  await t.rejects(async () => { await app.register(sirWebhooks, { secret: SECRET, path: '/other' }); await app.ready() },
    /the app already has "sirWebhooks".*\{ decorator: 'sirWebhooksSandbox' \}/)
})

test('the plugin, the node listener, the Express middleware and the fetch handler take the Web build\'s receiver too', async (t) => {
  const { Webhooks: WebWebhooks } = await import('../src/core/webhooks-web.js')
  const web = new WebWebhooks({ secret: SECRET, logger: captureLogs().logger })
  t.teardown(() => web.close())
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(sirWebhooks, { webhooks: web as unknown as Webhooks })
  t.equal((await injectDelivery(app, '/webhooks/sir', actionCompleted())).statusCode, 200)
  const { nodeListener } = await import('../src/node/listener.js')
  const { expressMiddleware } = await import('../src/express/middleware.js')
  const { fetchHandler } = await import('../src/fetch/handler.js')
  t.doesNotThrow(() => nodeListener(web))
  t.doesNotThrow(() => expressMiddleware(web))
  t.doesNotThrow(() => fetchHandler(web))
  for (const make of [() => nodeListener({} as never), () => expressMiddleware({} as never), () => fetchHandler({} as never)]) {
    t.throws(make, /"webhooks" must be a Webhooks instance from sir-webhooks/)
  }
  t.throws(() => nodeListener(web, { pth: '/x' } as never), /nodeListener\(webhooks, options\): unknown option "pth"; did you mean "path"\?/)
  t.throws(() => expressMiddleware(web, { loger: undefined } as never), /unknown option "loger"; did you mean "logger"\?/)
  t.throws(() => fetchHandler(web, { paths: '/x' } as never), /unknown option "paths"; did you mean "path"\?/)
})

test('the app\'s own JSON routes, before and after the plugin, keep parsed bodies', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.post('/before', async (request) => ({ got: request.body }))
  await app.register(sirWebhooks, { secret: SECRET })
  app.post('/after', async (request) => ({ got: request.body }))
  for (const url of ['/before', '/after']) {
    const response = await app.inject({ method: 'POST', url, payload: { hello: 'world' } })
    t.same(response.json(), { got: { hello: 'world' } }, url)
  }
  t.equal((await injectDelivery(app, '/webhooks/sir', actionCompleted())).statusCode, 200)
})

test('works in an app that registered fastify-raw-body globally, with exact bytes', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyRawBody, { global: true, encoding: 'utf8', runFirst: true })
  app.post('/other', async (request) => ({ raw: (request as unknown as { rawBody: string }).rawBody }))
  const rawBodyOnWebhookRoute: unknown[] = []
  app.addHook('onResponse', async (request) => {
    if (request.url === '/webhooks/sir') rawBodyOnWebhookRoute.push((request as unknown as { rawBody?: unknown }).rawBody)
  })
  await app.register(sirWebhooks, { secret: SECRET })
  const ids: string[] = []
  app.sirWebhooks.onAny((event) => { ids.push(event.id) })
  // Valid JSON whose string holds a byte that is not UTF-8: a decode-then-sign
  // receiver would see U+FFFD and fail the signature.
  const event = actionCompleted()
  const bytes = Buffer.concat([Buffer.from(JSON.stringify(event).slice(0, -1) + ',"note":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')])
  const response = await injectDelivery(app, '/webhooks/sir', bytes)
  t.equal(response.statusCode, 400, 'verified over the exact bytes, then refused as not UTF-8 JSON')
  t.equal(response.json().error.code, 'INVALID_JSON', 'the signature held: the refusal is the parse, not the HMAC')
  t.equal((await injectDelivery(app, '/webhooks/sir', event)).statusCode, 200)
  await eventually(() => ids.length === 1)
  t.same(rawBodyOnWebhookRoute, [undefined, undefined], 'fastify-raw-body did not read or decode the webhook body a second time')
  const other = await app.inject({ method: 'POST', url: '/other', payload: { a: 1 } })
  t.same(other.json(), { raw: '{"a":1}' }, 'fastify-raw-body still serves the app\'s other routes')
})

test('app.close() drains the receiver: accepted events finish first', async (t) => {
  const app = Fastify()
  await app.register(sirWebhooks, { secret: SECRET })
  const held = gate()
  const handled: string[] = []
  app.sirWebhooks.on('action.completed', async (event) => {
    await held.promise
    handled.push(event.id)
  })
  const event = actionCompleted()
  t.equal((await injectDelivery(app, '/webhooks/sir', event)).statusCode, 200)
  const closing = app.close()
  setTimeout(held.open, 20)
  await closing
  t.same(handled, [event.id])
  t.equal(app.sirWebhooks.closing, true)
})

test('refusals are logged with their reason, never with the secret, the signature or the body', async (t) => {
  const logs = captureLogs('trace')
  const app = Fastify({ loggerInstance: logs.logger as FastifyBaseLogger })
  t.teardown(() => app.close())
  const webhooks = new Webhooks({ secret: SECRET, logger: logs.logger, retry: { attempts: 1, minDelayMs: 0, maxDelayMs: 0 } })
  webhooks.on('action.completed', () => { throw new Error('boom') })
  await app.register(sirWebhooks, { webhooks })
  const marker = 'BODY_MARKER_f00d'
  const event = actionCompleted({ data: { actionId: marker, tokensDistributed: 1 } })
  const valid = signedRequest(event)
  const signatureHex = valid.headers['x-sir-signature']!.slice('sha256='.length)

  t.equal((await injectDelivery(app, '/webhooks/sir', event)).statusCode, 200)
  t.equal((await injectDelivery(app, '/webhooks/sir', event, { secret: 'whsec_wrong' })).statusCode, 401)
  t.equal((await injectDelivery(app, '/webhooks/sir', Buffer.from(`not json ${marker}`))).statusCode, 400)
  await eventually(() => logs.entries().some((entry) => entry.msg === 'event dead-lettered: a handler failed for good'))

  const mismatch = logs.entries().find((entry) => entry.reason === 'SIGNATURE_MISMATCH')
  t.match(mismatch, { level: 30, msg: 'webhook rejected', bodyLength: Number, skewSeconds: Number })
  t.ok(logs.entries().some((entry) => entry.reason === 'INVALID_JSON'))
  const text = logs.text()
  t.notOk(text.includes(SECRET), 'no secret')
  t.notOk(text.includes(signatureHex), 'no signature')
  t.notOk(text.includes(marker), 'no body content')
})

test('the default logger redacts secret-looking fields a handler might log', async (t) => {
  const { defaultLogger } = await import('../src/core/pino-logger.js')
  const { Writable } = await import('node:stream')
  const chunks: string[] = []
  const logger = defaultLogger(new Writable({ write (chunk, _encoding, done) { chunks.push(String(chunk)); done() } }))
  logger.child({ event: { id: 'evt_1', type: 'x' } }).info({ secret: 'whsec_leak', headers: { 'x-sir-signature': 'sha256=leak' }, rawBody: 'leak' }, 'careless')
  const text = chunks.join('')
  t.match(text, /"msg":"careless"/)
  t.notOk(text.includes('leak'), 'secret, signature header and raw body are redacted')
  t.match(text, /\[redacted\]/)
})

test('the 2xx is written before any handler code runs, even behind a slow async onSend hook', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  // An app-wide hook that holds every response for 50 ms, as compression might.
  app.addHook('onSend', async (_request, _reply, payload) => {
    await new Promise((resolve) => setTimeout(resolve, 50))
    return payload
  })
  await app.register(sirWebhooks, { secret: SECRET })
  const order: string[] = []
  app.addHook('onResponse', async (request) => { if (request.url === '/webhooks/sir') order.push('response finished') })
  app.sirWebhooks.on('action.completed', () => { order.push('handler started') })
  t.equal((await injectDelivery(app, '/webhooks/sir', actionCompleted())).statusCode, 200)
  await eventually(() => order.length === 2)
  t.same(order, ['response finished', 'handler started'])
})

test('a media type Fastify cannot parse is refused in the receiver\'s format', async (t) => {
  const logs = captureLogs()
  const app = Fastify({ loggerInstance: logs.logger as FastifyBaseLogger })
  t.teardown(() => app.close())
  await app.register(sirWebhooks, { secret: SECRET })
  for (const contentType of ['application/ json', 'application/json, text/plain']) {
    const response = await injectDelivery(app, '/webhooks/sir', actionCompleted(), { contentType })
    t.equal(response.statusCode, 415, contentType)
    t.equal(response.json().error.code, 'UNSUPPORTED_MEDIA_TYPE', contentType)
  }
  t.ok(logs.entries().some((entry) => entry.reason === 'UNSUPPORTED_MEDIA_TYPE'), 'and logged like any refusal')
})

/** The in-memory inbox behind promises, as a durable inbox answers: a start and every accept take a turn. */
class PromisedInbox implements Inbox {
  readonly inner = new MemoryInbox()
  failAccept = false
  async start (runtime: InboxRuntime): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 20))
    this.inner.start(runtime)
  }

  async accept (...args: Parameters<Inbox['accept']>): Promise<AcceptOutcome> {
    await new Promise((resolve) => setImmediate(resolve))
    if (this.failAccept) throw new Error('the store is down')
    return await this.inner.accept(...args)
  }

  async close (graceMs: number): Promise<void> {
    await this.inner.close(graceMs)
  }
}

test('with an inbox that answers by promise, the route waits for it: accepted, duplicate, refused', async (t) => {
  const logs = captureLogs()
  const inbox = new PromisedInbox()
  const webhooks = new Webhooks({ secret: SECRET, logger: logs.logger, inbox })
  const handled: string[] = []
  webhooks.on('action.completed', (event) => { handled.push(event.id) })
  const app = Fastify({ loggerInstance: logs.logger as FastifyBaseLogger })
  t.teardown(() => app.close())
  await app.register(sirWebhooks, { webhooks })
  const event = actionCompleted()
  // Sent before the inbox has started: answered once it has.
  const first = await injectDelivery(app, '/webhooks/sir', event)
  t.equal(first.statusCode, 200)
  t.same(first.json(), { received: true })
  const again = await injectDelivery(app, '/webhooks/sir', event)
  t.same(again.json(), { received: true, duplicate: true })
  await eventually(() => handled.length === 1)
  inbox.failAccept = true
  const refused = await injectDelivery(app, '/webhooks/sir', actionCompleted())
  t.equal(refused.statusCode, 503)
  t.equal(refused.json().error.code, 'INBOX_UNAVAILABLE')
  t.ok(logs.entries().some((entry) => entry.msg === 'the inbox failed to record the event'))
  t.same(handled, [event.id], 'the handler ran once')
})

test('an accepted event still runs when the sender hangs up before the held answer is written', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  const sending = gate()
  app.addHook('onSend', async (_request, _reply, payload) => {
    sending.open()
    await new Promise((resolve) => setTimeout(resolve, 100))
    return payload
  })
  await app.register(sirWebhooks, { secret: SECRET })
  const handled: string[] = []
  app.sirWebhooks.on('action.completed', (event) => { handled.push(event.id) })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const event = actionCompleted()
  const { body, headers } = signedRequest(event)
  const request = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/webhooks/sir', headers })
  request.on('error', () => {})
  request.end(Buffer.from(body))
  // The event is accepted and its answer is held by the hook: hang up now.
  await sending.promise
  request.destroy()
  await eventually(() => handled.length === 1, 5000, 'the handler to run')
  t.same(handled, [event.id])
})

test('at ready, an app without a request timeout is warned once, naming the options; one with a timeout is not', async (t) => {
  const warnings = (logs: ReturnType<typeof captureLogs>): Array<Record<string, unknown>> => logs.entries().filter((entry) => entry.reason === 'NO_REQUEST_TIMEOUT')

  const bare = captureLogs()
  const app = Fastify({ loggerInstance: bare.logger as FastifyBaseLogger })
  t.teardown(() => app.close())
  // Two registrations (sandbox and live): still one warning.
  await app.register(sirWebhooks, { secret: SECRET })
  await app.register(sirWebhooks, { secret: 'whsec_sandbox', path: '/webhooks/sandbox', decorator: 'sirWebhooksSandbox' })
  t.same(warnings(bare), [], 'nothing before ready')
  await app.ready()
  const [warning, ...more] = warnings(bare)
  t.same(more, [], 'once')
  t.match(warning, { level: 40, requestTimeout: 0, connectionTimeout: 0, msg: /requestTimeout.*connectionTimeout.*docs\/deployment\.md/ })
  t.equal(warning?.msg, NO_REQUEST_TIMEOUT_MESSAGE)

  const timed = captureLogs()
  const withTimeout = Fastify({ loggerInstance: timed.logger as FastifyBaseLogger, requestTimeout: 30_000 })
  t.teardown(() => withTimeout.close())
  await withTimeout.register(sirWebhooks, { secret: SECRET })
  await withTimeout.ready()
  t.same(warnings(timed), [], 'an app with requestTimeout is not warned')

  const serverSet = captureLogs()
  const viaServer = Fastify({ loggerInstance: serverSet.logger as FastifyBaseLogger })
  t.teardown(() => viaServer.close())
  viaServer.server.requestTimeout = 60_000
  await viaServer.register(sirWebhooks, { secret: SECRET })
  await viaServer.ready()
  t.same(warnings(serverSet), [], 'nor one whose server was given a timeout directly')
})

test('the app is ready only once the inbox has loaded its code: the first deliveries do not wait behind a module loading', async (t) => {
  const loading = gate()
  const inbox = new PromisedInbox() as PromisedInbox & { loaded: () => Promise<void> }
  inbox.loaded = async () => { await loading.promise }
  const webhooks = new Webhooks({ secret: SECRET, inbox, logger: captureLogs().logger })
  const app = Fastify()
  t.teardown(() => app.close())
  let ready = false
  const readying = app.register(sirWebhooks, { webhooks }).ready().then(() => { ready = true })
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(ready, false, 'not ready while the inbox loads')
  loading.open()
  await readying
  t.equal(ready, true, 'ready once it has')
  t.equal((await injectDelivery(app, '/webhooks/sir', actionCompleted())).statusCode, 200)
})

test('webhooks.loaded() resolves at once for an inbox with nothing to load', async (t) => {
  const webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger })
  t.teardown(() => webhooks.close())
  t.equal(await webhooks.loaded(), undefined)
})
