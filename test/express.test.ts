import { createServer } from 'node:http'
import express5 from 'express'
import express4 from 'express4'
import { test, type Test } from 'tap'
import { Webhooks, type WebhooksOptions } from '../src/index.js'
import { RAW_BODY_UNAVAILABLE_MESSAGE, captureRawBody, expressMiddleware } from '../src/express/middleware.js'
import { SECRET, actionCompleted, eventually, freshId, post, signedRequest } from './helpers/deliveries.js'
import { captureLogs } from './helpers/logs.js'
import { serveForTest } from './helpers/serve.js'
import { streamPostUnended } from './helpers/stream-post.js'

const PATH = '/webhooks/sir'

type App = ReturnType<typeof express5>
interface Started {
  webhooks: Webhooks
  base: string
  logs: ReturnType<typeof captureLogs>
}

async function start (t: Test, build: (app: App, webhooks: Webhooks) => void, express: typeof express5, options: Partial<WebhooksOptions> = {}): Promise<Started> {
  const logs = captureLogs()
  const webhooks = new Webhooks({ secret: SECRET, logger: logs.logger, ...options })
  const app = express()
  build(app, webhooks)
  return { webhooks, base: await serveForTest(t, createServer(app), webhooks), logs }
}

/** Sends a body only its exact bytes verify, and waits until the handler has seen exactly that event. */
async function deliverExactBytes (t: Test, base: string, webhooks: Webhooks): Promise<void> {
  const ids: string[] = []
  webhooks.onAny((event) => { ids.push(event.id) })
  const { id, body } = oddlySpaced()
  t.equal((await post(`${base}${PATH}`, signedRequest(body))).status, 200)
  await eventually(() => ids.length === 1, 5000, 'the handler')
  t.same(ids, [id])
}

/** Whitespace a re-serialized body would lose: only the exact bytes verify. */
function oddlySpaced (): { id: string, body: string } {
  const id = freshId()
  return { id, body: `{ "id" : "${id}",\n  "type":"action.completed",  "data": {"actionId":"a","tokensDistributed":1} }\n` }
}

for (const [version, express] of [['Express 5', express5], ['Express 4', express4 as typeof express5]] as const) {
  test(`${version}: route declared before a global express.json()`, async (t) => {
    const { webhooks, base } = await start(t, (app, receiver) => {
      app.post(PATH, expressMiddleware(receiver))
      app.use(express.json())
      app.post('/api/echo', (req, res) => { res.json({ parsed: req.body }) })
    }, express)
    await deliverExactBytes(t, base, webhooks)
    const echo = await fetch(`${base}/api/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' })
    t.same(await echo.json(), { parsed: { a: 1 } }, 'the app\'s own JSON routes still get parsed bodies')
  })

  test(`${version}: express.json({ verify: captureRawBody }) mounted first`, async (t) => {
    const { webhooks, base, logs } = await start(t, (app, receiver) => {
      app.use(express.json({ verify: captureRawBody }))
      app.post(PATH, expressMiddleware(receiver))
    }, express)
    const ids: string[] = []
    webhooks.onAny((event) => { ids.push(event.id) })
    const { id, body } = oddlySpaced()
    t.equal((await post(`${base}${PATH}`, signedRequest(body))).status, 200, 'the captured bytes verify')
    const tampered = signedRequest(actionCompleted())
    tampered.body = Buffer.from(JSON.stringify(actionCompleted()))
    t.equal((await post(`${base}${PATH}`, tampered)).status, 401, 'and a changed body still does not')
    await eventually(() => ids.length === 1, 5000, 'the handler')
    t.same(ids, [id])
    t.notOk(logs.entries().some((entry) => entry.reason === 'RAW_BODY_UNAVAILABLE'))
  })

  test(`${version}: plain express.json() mounted first answers 500 at once and says how to fix it`, async (t) => {
    const { webhooks, base, logs } = await start(t, (app, receiver) => {
      app.use(express.json())
      app.post(PATH, expressMiddleware(receiver))
    }, express)
    let calls = 0
    webhooks.onAny(() => { calls += 1 })
    const started = Date.now()
    const answer = await post(`${base}${PATH}`, signedRequest(actionCompleted()))
    t.equal(answer.status, 500)
    t.equal((answer.json.error as { code: string }).code, 'RAW_BODY_UNAVAILABLE')
    t.ok(Date.now() - started < 4000, 'answered at once, not after a wait for a body that never comes')
    t.equal(calls, 0)
    const logged = logs.entries().find((entry) => entry.reason === 'RAW_BODY_UNAVAILABLE')
    t.match(logged, { level: 50, path: PATH })
    const message = String(logged?.msg)
    t.match(message, /app\.post\('\/webhooks\/sir', expressMiddleware\(webhooks\)\) above app\.use\(express\.json\(\)\)/, 'fix 1: route before the parser')
    t.match(message, /express\.json\(\{ verify: captureRawBody, limit: '1mb' \}\)/, 'fix 2: the capture hook, with a limit')
    t.match(message, /sir-webhooks\/express/, 'and where the hook comes from')
    t.notMatch(logs.text(), /sha256=/, 'no signature in the logs')
    const notJson = await post(`${base}${PATH}`, signedRequest(actionCompleted(), { contentType: 'text/plain' }))
    t.equal(notJson.status, 415, 'a body the parser skipped is still read and judged by the receiver')
  })

  test(`${version}: express.raw({ type: 'application/json' }) on the route, as in SIR Giving's reference receiver`, async (t) => {
    const { webhooks, base } = await start(t, (app, receiver) => {
      app.post(PATH, express.raw({ type: 'application/json' }), expressMiddleware(receiver))
    }, express)
    await deliverExactBytes(t, base, webhooks)
  })

  test(`${version}: a hand-written hook that keeps req.rawBody as a Buffer`, async (t) => {
    const { base } = await start(t, (app, receiver) => {
      app.use(express.json({ verify: (req, _res, buf) => { (req as unknown as { rawBody: Buffer }).rawBody = buf } }))
      app.post(PATH, expressMiddleware(receiver))
    }, express)
    t.equal((await post(`${base}${PATH}`, signedRequest(oddlySpaced().body))).status, 200)
  })

  test(`${version}: 413 on a streamed oversize body before the sender finishes`, async (t) => {
    const { base } = await start(t, (app, receiver) => {
      app.post(PATH, expressMiddleware(receiver))
    }, express, { bodyLimit: 32 * 1024 })
    const { headers } = signedRequest(actionCompleted())
    const answer = await streamPostUnended(`${base}${PATH}`, { headers })
    t.equal(answer.status, 413)
    t.equal(JSON.parse(answer.body).error.code, 'BODY_TOO_LARGE')
  })

  test(`${version}: mounted with app.use, other methods go on to the app`, async (t) => {
    const { base } = await start(t, (app, receiver) => {
      app.use(PATH, expressMiddleware(receiver))
      app.get(PATH, (_req, res) => { res.send('status page') })
    }, express)
    t.equal(await (await fetch(`${base}${PATH}`)).text(), 'status page')
    t.equal((await post(`${base}${PATH}`, signedRequest(actionCompleted()))).status, 200)
  })

  test(`${version}: req.log from pino-http is used for the request's log lines`, async (t) => {
    const requestLogs = captureLogs()
    const { base, logs } = await start(t, (app, receiver) => {
      app.use((req, _res, next) => { (req as unknown as { log: unknown }).log = requestLogs.logger; next() })
      app.post(PATH, expressMiddleware(receiver))
    }, express)
    t.equal((await post(`${base}${PATH}`, signedRequest(actionCompleted(), { secret: 'whsec_wrong' }))).status, 401)
    t.match(requestLogs.entries().find((entry) => entry.msg === 'webhook rejected'), { reason: 'SIGNATURE_MISMATCH' })
    t.notOk(logs.entries().some((entry) => entry.msg === 'webhook rejected'), 'not the receiver\'s own logger')
  })
}

test('options are checked when the middleware is built', async (t) => {
  const webhooks = new Webhooks({ secret: SECRET })
  t.teardown(() => webhooks.close())
  t.throws(() => expressMiddleware({} as Webhooks), { message: /sir-webhooks: expressMiddleware\(webhooks\): "webhooks" must be a Webhooks instance/ })
  t.throws(() => expressMiddleware(webhooks, { logger: console as never }), { message: /"logger" must be a pino logger/ })
  t.match(RAW_BODY_UNAVAILABLE_MESSAGE, /^sir-webhooks: /)
})

// Every way an Express app mounts middleware: the exact-path rule applies where the
// app declared a literal path or gave `path`; elsewhere Express routes, as before.
for (const [name, express] of [['express 5', express5], ['express 4', express4]] as const) {
  test(`${name}: mounts without a literal route path still receive deliveries`, async (t) => {
    const mounts: Array<[string, (app: App, webhooks: Webhooks) => void, string]> = [
      ['app.use(middleware), no path', (app, webhooks) => { app.use(expressMiddleware(webhooks)) }, PATH],
      ['a route parameter', (app, webhooks) => { app.post('/hooks/:tenant', expressMiddleware(webhooks)) }, '/hooks/acme'],
      ['an array of paths', (app, webhooks) => { app.post(['/a', PATH], expressMiddleware(webhooks)) }, PATH],
      ['a regular expression', (app, webhooks) => { app.post(/^\/webhooks\/.+$/, expressMiddleware(webhooks)) }, PATH],
      ['a Router under a prefix', (app, webhooks) => {
        const router = express.Router()
        router.post('/sir', expressMiddleware(webhooks))
        app.use('/partners', router)
      }, '/partners/sir']
    ]
    for (const [mount, build, path] of mounts) {
      const { webhooks, base } = await start(t, build, express)
      let calls = 0
      webhooks.onAny(() => { calls += 1 })
      t.equal((await post(`${base}${path}`, signedRequest(actionCompleted()))).status, 200, mount)
      await eventually(() => calls === 1, 5000, `the handler (${mount})`)
    }
  })

  test(`${name}: a literal route path and the path option are matched exactly`, async (t) => {
    const viaRouter = await start(t, (app, webhooks) => {
      const router = express.Router()
      router.post('/sir', expressMiddleware(webhooks))
      app.use('/partners', router)
    }, express)
    t.equal((await post(`${viaRouter.base}/partners/sir/`, signedRequest(actionCompleted()))).status, 404, 'trailing slash under a Router')
    t.equal((await post(`${viaRouter.base}/partners/SIR`, signedRequest(actionCompleted()))).status, 404, 'letter case of the route path')
    const withPath = await start(t, (app, webhooks) => { app.use(PATH, expressMiddleware(webhooks, { path: PATH })) }, express)
    t.equal((await post(`${withPath.base}${PATH}`, signedRequest(actionCompleted()))).status, 200)
    for (const near of [`${PATH}/`, PATH.toUpperCase(), `${PATH}/more`]) {
      t.equal((await post(`${withPath.base}${near}`, signedRequest(actionCompleted()))).status, 404, `path option: ${near}`)
    }
  })
}
