import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import { test, type Test } from 'tap'
import { Webhooks, type WebhooksOptions } from '../src/index.js'
import { nodeListener, type NodeListenerOptions } from '../src/node/listener.js'
import { SECRET, actionCompleted, eventually, post, signedRequest } from './helpers/deliveries.js'
import { captureLogs } from './helpers/logs.js'
import { serveForTest } from './helpers/serve.js'
import { streamPostUnended } from './helpers/stream-post.js'

const PATH = '/webhooks/sir'

interface Started {
  webhooks: Webhooks
  base: string
  logs: ReturnType<typeof captureLogs>
}

async function start (t: Test, options: Partial<WebhooksOptions> = {}, listenerOptions: NodeListenerOptions = { path: PATH }, app?: (req: IncomingMessage, res: ServerResponse) => void): Promise<Started> {
  const logs = captureLogs()
  const webhooks = new Webhooks({ secret: SECRET, logger: logs.logger, ...options })
  const listener = nodeListener(webhooks, listenerOptions)
  const server = createServer(app === undefined ? listener : (req, res) => { listener(req, res, () => { app(req, res) }) })
  return { webhooks, base: await serveForTest(t, server, webhooks), logs }
}

test('a signed delivery is accepted and dispatched', async (t) => {
  const { webhooks, base } = await start(t)
  const ids: string[] = []
  webhooks.onAny((event) => { ids.push(event.id) })
  const event = actionCompleted()
  const answer = await post(`${base}${PATH}?source=sir`, signedRequest(event))
  t.equal(answer.status, 200, 'a query string does not change the route')
  await eventually(() => ids.length === 1, 5000, 'the handler')
  t.same(ids, [event.id])
})

test('413 on a streamed oversize body, answered before the sender finishes', async (t) => {
  const { webhooks, base, logs } = await start(t, { bodyLimit: 64 * 1024 })
  let calls = 0
  webhooks.onAny(() => { calls += 1 })
  const { headers } = signedRequest(actionCompleted())
  const answer = await streamPostUnended(`${base}${PATH}`, { headers, maxBytes: 256 * 1024 * 1024 })
  t.equal(answer.status, 413)
  t.equal(JSON.parse(answer.body).error.code, 'BODY_TOO_LARGE')
  t.equal(answer.headers.connection, 'close', 'the connection is closed rather than the rest read')
  t.ok(answer.bytesSent < 256 * 1024 * 1024, `answered after ${answer.bytesSent} of 256 MiB, with the body unfinished`)
  t.equal(calls, 0)
  t.match(logs.entries().find((entry) => entry.reason === 'BODY_TOO_LARGE'), { level: 30, msg: 'webhook rejected', bodyLimit: 64 * 1024 })
})

test('413 at once for a declared Content-Length over the limit, before any byte is sent', async (t) => {
  const { base } = await start(t, { bodyLimit: 1024 })
  const { headers } = signedRequest(actionCompleted())
  const answer = await streamPostUnended(`${base}${PATH}`, { headers: { ...headers, 'content-length': String(10 * 1024 * 1024) }, maxBytes: 0 })
  t.equal(answer.status, 413)
  t.equal(answer.bytesSent, 0)
})

test('other paths and methods go to next', async (t) => {
  const { webhooks, base } = await start(t, {}, { path: PATH }, (_req, res) => { res.end('the app') })
  let calls = 0
  webhooks.onAny(() => { calls += 1 })
  for (const url of [`${base}/other`, `${base}${PATH}/deeper`, `${base}/webhooks`]) {
    const response = await fetch(url, { method: 'POST', body: '{}' })
    t.equal(await response.text(), 'the app', `POST ${url.slice(base.length)}`)
  }
  const get = await fetch(`${base}${PATH}`)
  t.equal(await get.text(), 'the app', 'GET on the webhook path')
  t.equal(calls, 0)
})

test('without next, anything else is a bare 404', async (t) => {
  const { base } = await start(t)
  t.equal((await fetch(`${base}/other`, { method: 'POST', body: '{}' })).status, 404)
  t.equal((await fetch(`${base}${PATH}`)).status, 404, 'GET')
})

test('path defaults to /webhooks/sir', async (t) => {
  const { base } = await start(t, {}, {})
  t.equal((await post(`${base}/webhooks/sir`, signedRequest(actionCompleted()))).status, 200)
})

test('a sender that disconnects mid-body is not answered, dispatched or fatal', async (t) => {
  const { webhooks, base, logs } = await start(t)
  let calls = 0
  webhooks.onAny(() => { calls += 1 })
  const { body, headers } = signedRequest(actionCompleted())
  await new Promise<void>((resolve) => {
    const request = httpRequest(`${base}${PATH}`, { method: 'POST', headers: { ...headers, 'content-length': String(body.byteLength) } })
    request.on('error', () => resolve())
    request.write(body.subarray(0, 10), () => { setTimeout(() => { request.destroy() }, 20) })
    request.on('close', () => resolve())
  })
  await eventually(() => logs.entries().some((entry) => entry.msg === 'webhook request aborted before its body ended; nothing to answer'), 5000, 'the abort to be logged')
  t.equal(calls, 0)
  t.equal((await post(`${base}${PATH}`, signedRequest(actionCompleted()))).status, 200, 'the server carries on')
})

test('options are checked when the listener is built', async (t) => {
  const webhooks = new Webhooks({ secret: SECRET })
  t.teardown(() => webhooks.close())
  t.throws(() => nodeListener(webhooks, { path: 'webhooks/sir' }), { message: /sir-webhooks: "path" must be a string starting with "\/"/ })
  t.throws(() => nodeListener(webhooks, { path: '/webhooks?x=1' }), { message: /"path"/ })
  t.throws(() => nodeListener({} as Webhooks, { path: PATH }), { message: /"webhooks" must be a Webhooks instance/ })
  t.throws(() => nodeListener(webhooks, { path: PATH, logger: {} as never }), { message: /"logger" must be a pino logger/ })
})
