// The servers under load. Each runs alone in its own child process (bench/server.js),
// listens on 127.0.0.1 with an ephemeral port and answers 2xx to a valid delivery.
import { createHmac, timingSafeEqual } from 'node:crypto'
import http from 'node:http'
import { Readable } from 'node:stream'
import { pathToFileURL } from 'node:url'
import { PATH } from './deliveries.js'

/**
 * `scheme`: how its deliveries are signed. `group`: which comparison it belongs to.
 * The order is the order of the table and of each round.
 */
export const SERVERS = [
  { name: 'fastify-bare', scheme: 'sir', group: 'baseline', label: '(1) bare Fastify route, reads nothing' },
  { name: 'fastify-minimal', scheme: 'sir', group: 'baseline', label: '(2) hand-written Fastify receiver, JSON answer' },
  { name: 'fastify-minimal-empty', scheme: 'sir', group: 'baseline', label: '(2) hand-written Fastify receiver, empty 200 like the reference receiver' },
  { name: 'sir-fastify', scheme: 'sir', group: 'ours', label: '(3) sir-webhooks Fastify plugin' },
  // Run only when named (--servers): the core in fastify-minimal's route, to tell
  // what the core costs over HTTP from what the plugin around it does.
  { name: 'fastify-core', scheme: 'sir', group: 'diagnostic', label: '(3d) fastify-minimal\'s route calling the sir-webhooks core' },
  { name: 'fastify-raw-body', scheme: 'sir', group: 'peer', label: '(6) fastify-raw-body (README options)' },
  { name: 'fastify-raw-body-buffer', scheme: 'sir', group: 'peer', label: '(6) fastify-raw-body, encoding: false' },
  { name: 'standardwebhooks', scheme: 'standard', group: 'peer', label: '(5) standardwebhooks verify in Fastify' },
  { name: 'express-raw', scheme: 'sir', group: 'baseline', label: '(4b) hand-written express.raw receiver' },
  { name: 'sir-express', scheme: 'sir', group: 'ours', label: '(4) sir-webhooks Express middleware' },
  { name: 'express-octokit', scheme: 'github', group: 'peer', label: '(5) @octokit/webhooks createNodeMiddleware in Express' },
  { name: 'express-standardwebhooks', scheme: 'standard', group: 'peer', label: '(5) standardwebhooks as Express middleware' },
  { name: 'node-minimal', scheme: 'sir', group: 'baseline', label: '(4c) hand-written node:http receiver, empty 200' },
  { name: 'sir-node', scheme: 'sir', group: 'ours', label: '(4) sir-webhooks node:http listener' },
  { name: 'octokit', scheme: 'github', group: 'peer', label: '(5) @octokit/webhooks node middleware on node:http' },
  { name: 'sir-fetch', scheme: 'sir', group: 'ours', label: '(4) sir-webhooks fetch handler (node:http bridge)' }
]

const ACCEPTED = '{"received":true}'

// Which build of sir-webhooks the servers load: run.js --dist <dir> sets it, for an
// A/B of two builds (a copy of dist/ from before a change, say).
const DIST = process.env.SIR_BENCH_DIST === undefined ? '../dist' : pathToFileURL(process.env.SIR_BENCH_DIST).href

/** How the receivers' handlers behave: the throughput runs use `noop`. */
function handlerFor (mode) {
  if (mode === 'slow') return () => new Promise((resolve) => setTimeout(resolve, 1000))
  if (mode === 'stopped') return () => new Promise(() => {})
  return async () => {}
}

/**
 * What the hand-written receivers do with an event: "push to an array", drained
 * on the next turn by a no-op consumer. Without the drain the array would hold
 * every event of the run and the baseline would be measuring its own heap growth.
 */
function arrayQueue () {
  const events = []
  let received = 0
  const drain = () => {
    for (const event of events) noop(event)
    events.length = 0
  }
  return {
    push (event) {
      received += 1
      if (events.push(event) === 1) setImmediate(drain)
    },
    get received () { return received }
  }
}

function noop () {}

/** The check a hand-written receiver does, as SIR Giving's reference receiver does it. */
function handVerify (secret, timestamp, signature, body) {
  // No body: a request cut off when a load run ends, which body parsers hand on unread.
  if (typeof timestamp !== 'string' || typeof signature !== 'string' || body === undefined) return false
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return false
  const expected = Buffer.from('sha256=' + createHmac('sha256', secret).update(timestamp + '.').update(body).digest('hex'))
  const provided = Buffer.from(signature)
  return provided.length === expected.length && timingSafeEqual(provided, expected)
}

async function listenFastify (app) {
  await app.listen({ host: '127.0.0.1', port: 0 })
  return app.server
}

function listenNode (server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve(server))
  })
}

/** A node:http → `Request` → `Response` bridge, the least a fetch handler needs to run under Node. */
function fetchBridge (handler) {
  return function bridge (request, response) {
    const headers = new Headers()
    for (let i = 0; i < request.rawHeaders.length; i += 2) headers.append(request.rawHeaders[i], request.rawHeaders[i + 1])
    const hasBody = request.method !== 'GET' && request.method !== 'HEAD'
    const webRequest = new Request(`http://${request.headers.host ?? '127.0.0.1'}${request.url}`, {
      method: request.method,
      headers,
      body: hasBody ? Readable.toWeb(request) : undefined,
      duplex: 'half'
    })
    handler(webRequest).then(async (webResponse) => {
      const body = Buffer.from(await webResponse.arrayBuffer())
      response.writeHead(webResponse.status, Object.fromEntries(webResponse.headers))
      response.end(body)
    }).catch((error) => {
      response.statusCode = 500
      response.end(String(error))
    })
  }
}

/** Starts one server; returns `{ server, received() }`, `received` counting events handed on. */
export async function startServer (name, { secret, handler = 'noop', maxQueueSize } = {}) {
  const receiverOptions = maxQueueSize === undefined ? {} : { maxQueueSize }
  switch (name) {
    case 'fastify-bare': {
      const { default: Fastify } = await import('fastify')
      const app = Fastify({ logger: false })
      let received = 0
      await app.register(async (scope) => {
        scope.removeAllContentTypeParsers()
        // Lets the body stream past without keeping or parsing it. (Answering with
        // the body unread measured slower under pipelining: node:http then has to
        // dump it before it parses the next request.)
        scope.addContentTypeParser('*', (_request, payload, done) => {
          payload.on('end', () => { done(null) })
          payload.resume()
        })
        scope.post(PATH, async (_request, reply) => {
          received += 1
          return reply.header('content-type', 'application/json; charset=utf-8').send(ACCEPTED)
        })
      })
      return { server: await listenFastify(app), received: () => received }
    }
    case 'fastify-minimal':
    case 'fastify-minimal-empty': {
      const { default: Fastify } = await import('fastify')
      const app = Fastify({ logger: false })
      const queue = arrayQueue()
      const empty = name === 'fastify-minimal-empty'
      await app.register(async (scope) => {
        scope.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => { done(null, body) })
        scope.post(PATH, async (request, reply) => {
          if (!handVerify(secret, request.headers['x-sir-timestamp'], request.headers['x-sir-signature'], request.body)) {
            return reply.code(401).send({ error: 'invalid signature' })
          }
          queue.push(JSON.parse(request.body))
          // The reference receiver answers a bare 200; the other variant answers as ours does.
          if (empty) return reply.code(200).send()
          return reply.header('content-type', 'application/json; charset=utf-8').send(ACCEPTED)
        })
      })
      return { server: await listenFastify(app), received: () => queue.received }
    }
    case 'node-minimal': {
      const queue = arrayQueue()
      const server = http.createServer((request, response) => {
        if (request.method !== 'POST' || request.url !== PATH) {
          response.writeHead(404).end()
          request.resume()
          return
        }
        const chunks = []
        request.on('data', (chunk) => { chunks.push(chunk) })
        request.on('end', () => {
          const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)
          if (!handVerify(secret, request.headers['x-sir-timestamp'], request.headers['x-sir-signature'], body)) {
            response.writeHead(401).end()
            return
          }
          queue.push(JSON.parse(body))
          response.writeHead(200).end()
        })
      })
      return { server: await listenNode(server), received: () => queue.received }
    }
    case 'fastify-core': {
      const { default: Fastify } = await import('fastify')
      const { Webhooks } = await import(DIST + '/index.js')
      const { deliveryFromNodeHeaders } = await import(DIST + '/core/delivery.js')
      const app = Fastify({ logger: false })
      // The app's logger, as the plugin gives its receiver.
      const webhooks = new Webhooks({ secret, logger: app.log, ...receiverOptions })
      let received = 0
      const run = handlerFor(handler)
      webhooks.onAny((event) => { received += 1; return run(event) })
      await app.register(async (scope) => {
        scope.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => { done(null, body) })
        scope.post(PATH, (request, reply) => {
          const answer = webhooks.decide(deliveryFromNodeHeaders(request.headers, request.body), request.log)
          reply.code(answer.status).header('content-type', 'application/json; charset=utf-8').send(answer.body)
        })
      })
      return { server: await listenFastify(app), received: () => received, webhooks }
    }
    case 'sir-fastify': {
      const { default: Fastify } = await import('fastify')
      const { sirWebhooks } = await import(DIST + '/fastify/plugin.js')
      const app = Fastify({ logger: false })
      await app.register(sirWebhooks, { secret, path: PATH, receiver: receiverOptions })
      let received = 0
      const run = handlerFor(handler)
      app.sirWebhooks.onAny((event) => { received += 1; return run(event) })
      return { server: await listenFastify(app), received: () => received, webhooks: app.sirWebhooks }
    }
    case 'express-raw': {
      const { default: express } = await import('express')
      const app = express()
      const queue = arrayQueue()
      // SIR Giving's reference receiver, as its documentation writes it.
      app.post(PATH, express.raw({ type: 'application/json' }), (request, response) => {
        if (!handVerify(secret, request.headers['x-sir-timestamp'], request.headers['x-sir-signature'], request.body)) {
          response.status(401).json({ error: 'invalid signature' })
          return
        }
        queue.push(JSON.parse(request.body))
        response.status(200).json({ received: true })
      })
      return { server: await listenNode(http.createServer(app)), received: () => queue.received }
    }
    case 'sir-express':
    case 'sir-node':
    case 'sir-fetch': {
      const { Webhooks } = await import(DIST + '/index.js')
      const webhooks = new Webhooks({ secret, ...receiverOptions })
      let received = 0
      const run = handlerFor(handler)
      webhooks.onAny((event) => { received += 1; return run(event) })
      let listener
      if (name === 'sir-express') {
        const { default: express } = await import('express')
        const { expressMiddleware } = await import(DIST + '/express/middleware.js')
        listener = express()
        listener.post(PATH, expressMiddleware(webhooks))
      } else if (name === 'sir-node') {
        const { nodeListener } = await import(DIST + '/node/listener.js')
        listener = nodeListener(webhooks, { path: PATH })
      } else {
        const { fetchHandler } = await import(DIST + '/fetch/handler.js')
        listener = fetchBridge(fetchHandler(webhooks, { path: PATH }))
      }
      return { server: await listenNode(http.createServer(listener)), received: () => received, webhooks }
    }
    case 'octokit': {
      const { Webhooks, createNodeMiddleware } = await import('@octokit/webhooks')
      const webhooks = new Webhooks({ secret })
      let received = 0
      webhooks.onAny(() => { received += 1 })
      // Quiet: it logs every request a load run cuts off at its end, which says nothing here.
      const quiet = { debug: noop, info: noop, warn: noop, error: noop }
      const middleware = createNodeMiddleware(webhooks, { path: PATH, log: quiet })
      return { server: await listenNode(http.createServer(middleware)), received: () => received }
    }
    case 'express-octokit': {
      const { default: express } = await import('express')
      const { Webhooks, createNodeMiddleware } = await import('@octokit/webhooks')
      const webhooks = new Webhooks({ secret })
      let received = 0
      // octokit answers after its handlers have run: a no-op one, as for `octokit`.
      webhooks.onAny(() => { received += 1 })
      const quiet = { debug: noop, info: noop, warn: noop, error: noop }
      const app = express()
      app.use(createNodeMiddleware(webhooks, { path: PATH, log: quiet }))
      return { server: await listenNode(http.createServer(app)), received: () => received }
    }
    case 'express-standardwebhooks': {
      const { default: express } = await import('express')
      const { Webhook } = await import('standardwebhooks')
      const verifier = new Webhook(secret)
      const queue = arrayQueue()
      const app = express()
      app.post(PATH, express.raw({ type: 'application/json' }), (request, response) => {
        let event
        try {
          event = verifier.verify(request.body, request.headers)
        } catch {
          response.status(401).json({ error: 'invalid signature' })
          return
        }
        queue.push(event)
        response.status(200).json({ received: true })
      })
      return { server: await listenNode(http.createServer(app)), received: () => queue.received }
    }
    case 'standardwebhooks': {
      const { default: Fastify } = await import('fastify')
      const { Webhook } = await import('standardwebhooks')
      const verifier = new Webhook(secret)
      const app = Fastify({ logger: false })
      const queue = arrayQueue()
      await app.register(async (scope) => {
        scope.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => { done(null, body) })
        scope.post(PATH, async (request, reply) => {
          let event
          try {
            event = verifier.verify(request.body, request.headers)
          } catch {
            return reply.code(401).send({ error: 'invalid signature' })
          }
          queue.push(event)
          return reply.header('content-type', 'application/json; charset=utf-8').send(ACCEPTED)
        })
      })
      return { server: await listenFastify(app), received: () => queue.received }
    }
    case 'fastify-raw-body':
    case 'fastify-raw-body-buffer': {
      const { default: Fastify } = await import('fastify')
      const { default: fastifyRawBody } = await import('fastify-raw-body')
      const app = Fastify({ logger: false })
      // The README's options: per route, before other preParsing hooks; the
      // `-buffer` variant keeps bytes instead of a UTF-8 string.
      await app.register(fastifyRawBody, {
        field: 'rawBody',
        global: false,
        encoding: name === 'fastify-raw-body' ? 'utf8' : false,
        runFirst: true
      })
      const queue = arrayQueue()
      app.post(PATH, { config: { rawBody: true } }, async (request, reply) => {
        if (!handVerify(secret, request.headers['x-sir-timestamp'], request.headers['x-sir-signature'], request.rawBody)) {
          return reply.code(401).send({ error: 'invalid signature' })
        }
        // Fastify's JSON parser already parsed the body, before the signature was checked.
        queue.push(request.body)
        return reply.header('content-type', 'application/json; charset=utf-8').send(ACCEPTED)
      })
      return { server: await listenFastify(app), received: () => queue.received }
    }
    default:
      throw new Error(`bench: unknown server ${name}`)
  }
}
