import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Server } from 'node:http'
import { createAdaptorServer } from '@hono/node-server'
import { test, type Test } from 'tap'
import { Webhooks, type WebhooksOptions } from '../src/index.js'
import { fetchHandler, type FetchHandlerOptions } from '../src/fetch/handler.js'
import { SECRET, actionCompleted, eventually, signedRequest } from './helpers/deliveries.js'
import { captureLogs } from './helpers/logs.js'
import { serveForTest } from './helpers/serve.js'
import { streamPostUnended } from './helpers/stream-post.js'

const URL_BASE = 'https://receiver.example'
const PATH = '/webhooks/sir'

function setUp (t: Test, options: Partial<WebhooksOptions> = {}, handlerOptions: FetchHandlerOptions = {}) {
  const logs = captureLogs()
  const webhooks = new Webhooks({ secret: SECRET, logger: logs.logger, ...options })
  t.teardown(() => webhooks.close())
  return { webhooks, logs, handle: fetchHandler(webhooks, handlerOptions) }
}

/** A body stream that produces `chunkBytes` chunks forever and records whether it was cancelled. */
function endlessStream (chunkBytes: number): { stream: ReadableStream<Uint8Array>, pulled: () => number, cancelled: () => boolean } {
  let pulled = 0
  let cancelled = false
  const stream = new ReadableStream<Uint8Array>({
    pull (controller) {
      pulled += chunkBytes
      controller.enqueue(new Uint8Array(chunkBytes).fill(0x20))
    },
    cancel () { cancelled = true }
  })
  return { stream, pulled: () => pulled, cancelled: () => cancelled }
}

function streamedRequest (stream: ReadableStream<Uint8Array>, headers: Record<string, string>, path = PATH): Request {
  return new Request(URL_BASE + path, { method: 'POST', headers, body: stream, duplex: 'half' } as RequestInit)
}

test('a signed delivery is accepted and dispatched', async (t) => {
  const { webhooks, handle } = setUp(t)
  const ids: string[] = []
  webhooks.onAny((event) => { ids.push(event.id) })
  const event = actionCompleted()
  const { body, headers } = signedRequest(event)
  const response = await handle(new Request(URL_BASE + PATH, { method: 'POST', headers, body }))
  t.equal(response.status, 200)
  t.equal(response.headers.get('content-type'), 'application/json; charset=utf-8')
  t.same(await response.json(), { received: true })
  await eventually(() => ids.length === 1, 5000, 'the handler')
  t.same(ids, [event.id])
})

test('a Content-Length that understates the body does not let it through', async (t) => {
  const { webhooks, handle, logs } = setUp(t, { bodyLimit: 1024 })
  let calls = 0
  webhooks.onAny(() => { calls += 1 })
  const { headers } = signedRequest(actionCompleted())
  const body = endlessStream(512)
  const response = await handle(streamedRequest(body.stream, { ...headers, 'content-length': '10' }))
  t.equal(response.status, 413)
  t.equal(((await response.json()) as { error: { code: string } }).error.code, 'BODY_TOO_LARGE')
  t.ok(body.pulled() <= 1024 + 512 * 4, `stopped reading after ${body.pulled()} bytes`)
  await eventually(body.cancelled, 5000, 'the body stream to be cancelled')
  t.equal(calls, 0)
  t.match(logs.entries().find((entry) => entry.reason === 'BODY_TOO_LARGE'), { level: 30, bodyLimit: 1024, declaredLength: 10 })
})

test('a chunked oversize body with no Content-Length is cut off at the limit', async (t) => {
  const { handle } = setUp(t, { bodyLimit: 4096 })
  const { headers } = signedRequest(actionCompleted())
  const body = endlessStream(1000)
  const response = await handle(streamedRequest(body.stream, headers))
  t.equal(response.status, 413)
  t.ok(body.pulled() < 4096 + 1000 * 4, `stopped reading after ${body.pulled()} bytes of an endless body`)
})

test('behind a real server (@hono/node-server), an unfinished oversize upload is answered 413 mid-body', async (t) => {
  const { handle } = setUp(t, { bodyLimit: 32 * 1024 })
  const server = createAdaptorServer({ fetch: (request) => handle(request), overrideGlobalObjects: false }) as Server
  const base = await serveForTest(t, server)
  const { headers } = signedRequest(actionCompleted())
  const answer = await streamPostUnended(`${base}${PATH}`, { headers })
  t.equal(answer.status, 413)
  t.equal(JSON.parse(answer.body).error.code, 'BODY_TOO_LARGE')
})

test('a declared Content-Length over the limit is refused before a byte is read', async (t) => {
  const { handle } = setUp(t, { bodyLimit: 1024 })
  const { headers } = signedRequest(actionCompleted())
  let pulls = 0
  // A sender that never sends: only an answer that does not wait for the body arrives.
  const stalled = new ReadableStream<Uint8Array>({ pull: () => { pulls += 1; return new Promise(() => {}) } }, { highWaterMark: 0 })
  const response = await handle(streamedRequest(stalled, { ...headers, 'content-length': String(50 * 1024 * 1024) }))
  t.equal(response.status, 413)
  t.equal(pulls, 0)
})

test('a body split across many chunks is put back together byte for byte', async (t) => {
  const { webhooks, handle } = setUp(t)
  const ids: string[] = []
  webhooks.onAny((event) => { ids.push(event.id) })
  const event = actionCompleted()
  const { body, headers } = signedRequest(event)
  const stream = new ReadableStream<Uint8Array>({
    start (controller) {
      for (let offset = 0; offset < body.byteLength; offset += 7) controller.enqueue(body.slice(offset, offset + 7))
      controller.close()
    }
  })
  t.equal((await handle(streamedRequest(stream, headers))).status, 200)
  await eventually(() => ids.length === 1, 5000, 'the handler')
})

test('only POST is a delivery; with a path, only that path', async (t) => {
  const { handle } = setUp(t, {}, { path: PATH })
  const { body, headers } = signedRequest(actionCompleted())
  t.equal((await handle(new Request(URL_BASE + PATH))).status, 404, 'GET')
  t.equal((await handle(new Request(URL_BASE + '/other', { method: 'POST', headers, body }))).status, 404, 'another path')
  t.equal((await handle(new Request(URL_BASE + PATH + '?attempt=2', { method: 'POST', headers, body }))).status, 200, 'a query string is fine')
})

test('without a path, any path is the webhook route (the framework routed it)', async (t) => {
  const { handle } = setUp(t)
  const { body, headers } = signedRequest(actionCompleted())
  t.equal((await handle(new Request(URL_BASE + '/api/webhooks/sir', { method: 'POST', headers, body }))).status, 200)
})

test('options are checked when the handler is built', async (t) => {
  const webhooks = new Webhooks({ secret: SECRET })
  t.teardown(() => webhooks.close())
  t.throws(() => fetchHandler({} as Webhooks), { message: /sir-webhooks: fetchHandler\(webhooks\): "webhooks" must be a Webhooks instance/ })
  t.throws(() => fetchHandler(webhooks, { path: 'sir' }), { message: /sir-webhooks: "path" must be a string starting with "\/"/ })
})

// The adapter's own module graph must load where `node:` modules do not exist.
test('the fetch adapter imports no node: module and no package, directly or through its own imports', async (t) => {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '../src')
  const seen = new Set<string>()
  const bare: string[] = []
  const visit = async (file: string): Promise<void> => {
    if (seen.has(file)) return
    seen.add(file)
    const source = await readFile(file, 'utf8')
    for (const match of source.matchAll(/^import\s+(type\s+)?[^'"]*['"]([^'"]+)['"]/gm)) {
      const [, typeOnly, specifier] = match
      if (typeOnly !== undefined || specifier === undefined) continue
      if (specifier.startsWith('.')) await visit(resolve(dirname(file), specifier.replace(/\.js$/, '.ts')))
      else bare.push(`${file.slice(root.length)} imports ${specifier}`)
    }
  }
  await visit(resolve(root, 'fetch/handler.ts'))
  t.ok(seen.size > 1, `followed ${seen.size} files`)
  t.same(bare, [], 'only relative, Web-only modules')
})

test('a body something else already read is refused with 500 at once, and the log says what to change', async (t) => {
  const { webhooks, handle, logs } = setUp(t)
  let calls = 0
  webhooks.onAny(() => { calls += 1 })
  const { body, headers } = signedRequest(actionCompleted())
  const request = new Request(URL_BASE + PATH, { method: 'POST', headers, body })
  await request.json()
  const response = await handle(request)
  t.equal(response.status, 500)
  t.equal(((await response.json()) as { error: { code: string } }).error.code, 'RAW_BODY_UNAVAILABLE')
  t.equal(calls, 0)
  const logged = logs.entries().find((entry) => entry.reason === 'RAW_BODY_UNAVAILABLE')
  t.match(logged, { level: 50 })
  t.match(String(logged?.msg), /untouched Request/)
  t.match(String(logged?.msg), /request\.clone\(\)/)
})
