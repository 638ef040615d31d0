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

/** A receiver whose decision step fails: stands for any bug or failure inside the request path. */
function failingInside (webhooks: Webhooks): Error {
  const failure = new Error('the decision step failed')
  webhooks.decide = () => { throw failure }
  return failure
}

test('an internal failure with no next answers 500, never 200, and logs the error', async (t) => {
  const { webhooks, base, logs } = await start(t, {}, { path: PATH })
  let calls = 0
  webhooks.onAny(() => { calls += 1 })
  const failure = failingInside(webhooks)
  const answer = await post(`${base}${PATH}`, signedRequest(actionCompleted()))
  t.equal(answer.status, 500, 'the sender sees a failure and will retry')
  t.equal(calls, 0)
  const logged = logs.entries().find((entry) => entry.msg === 'the webhook listener failed to answer')
  t.match(logged, { level: 50, err: { message: failure.message } }, 'the error is logged')
})

test('an internal failure with a next hands the error to next and writes nothing itself', async (t) => {
  const logs = captureLogs()
  const webhooks = new Webhooks({ secret: SECRET, logger: logs.logger })
  const listener = nodeListener(webhooks, { path: PATH })
  const failure = failingInside(webhooks)
  const passed: unknown[] = []
  const server = createServer((req, res) => {
    listener(req, res, (error) => {
      passed.push(error)
      res.statusCode = 502
      res.end('the app answered')
    })
  })
  const base = await serveForTest(t, server, webhooks)
  const answer = await post(`${base}${PATH}`, signedRequest(actionCompleted()))
  t.equal(answer.status, 502, 'the app decides the answer')
  t.same(passed, [failure], 'next got the error')
  t.notOk(logs.entries().some((entry) => entry.msg === 'the webhook listener failed to answer'), 'the listener leaves the logging to the app')
})

test('an internal failure after the headers went out cuts the connection instead of completing a 200', async (t) => {
  const logs = captureLogs()
  const webhooks = new Webhooks({ secret: SECRET, logger: logs.logger })
  const listener = nodeListener(webhooks, { path: PATH })
  failingInside(webhooks)
  // An app hook that flushed a 200's headers before the listener ran.
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.flushHeaders()
    listener(req, res)
  })
  const base = await serveForTest(t, server, webhooks)
  const { body, headers } = signedRequest(actionCompleted())
  const outcome = await new Promise<string>((resolve) => {
    const request = httpRequest(`${base}${PATH}`, { method: 'POST', headers }, (response) => {
      response.on('data', () => {})
      response.on('end', () => { resolve('complete') })
      response.on('error', () => { resolve('cut') })
      response.on('aborted', () => { resolve('cut') })
    })
    request.on('error', () => { resolve('cut') })
    request.end(body)
  })
  t.equal(outcome, 'cut', 'the sender never sees a complete 200')
  t.ok(logs.entries().some((entry) => entry.msg === 'the webhook listener failed to answer'))
})
