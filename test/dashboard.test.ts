import { gzipSync } from 'node:zlib'
import t, { type Test } from 'tap'
import { Webhooks } from '../src/index.js'
import dashboard, { dashboardHandler, escapeHtml } from '../src/dashboard/index.js'
import { Samples } from '../src/dashboard/samples.js'
import { join } from 'node:path'
import { sqliteInbox } from '../src/sqlite/inbox.js'
import { tempDir } from './inbox-contract/scenarios.js'
import { delivery, event, receiver, until } from './inbox-contract/support.js'
import { BASIC, OPERATOR, PREFIX, SAME_ORIGIN, TERMINAL, XSS, fastifyApp, form, sqliteReceiver, tokenOn } from './dashboard/support.js'
import Fastify from 'fastify'

const PAGES = ['/', '/api/overview', '/events', '/events?q=evt_1', '/dead', '/handlers', '/assets/dashboard.js', '/assets/dashboard.css', '/assets/uPlot.iife.min.js', '/nope']
const ACTIONS = ['/actions/redrive', '/actions/redrive-all', '/actions/purge', '/actions/pause', '/actions/resume']

/** An event whose handler failed for good: dead in the store. */
async function deadEvent (t: Test, id: string, data: Record<string, unknown> = {}) {
  const setup = sqliteReceiver(t)
  const body = { ...event(id), data: { actionId: 'act_1', tokensDistributed: 5, ...data } }
  t.equal((await setup.webhooks.receive(delivery(body))).status, 200)
  await until(async () => (await setup.webhooks.inbox.outcome?.(id))?.state === 'dead', 'the event to be dead')
  return setup
}

t.test('options are checked at registration, naming the option', async (t) => {
  const webhooks = new Webhooks({ secret: 'whsec_x' })
  t.teardown(() => webhooks.close())
  const register = async (options: object) => { const app = Fastify(); try { await app.register(dashboard, options as never); await app.ready() } finally { await app.close() } }
  await t.rejects(register({ webhooks, prefix: PREFIX }), { message: /give "authorize" .* or "basicAuth" credentials; it never runs open/ })
  await t.rejects(register({ webhooks, authorize: 'yes' }), { message: /"authorize" must be a function/ })
  await t.rejects(register({ webhooks, basicAuth: { username: 'a', password: 'short' } }), { message: /"basicAuth" must be .* at least 12 characters/ })
  await t.rejects(register({ webhooks, authorize: () => true, readOnly: 'yes' }), { message: /"readOnly" must be true or false/ })
  await t.rejects(register({ webhooks, authorize: () => true, readonly: true }), { message: /unknown option "readonly"; did you mean "readOnly"\?/ })
  await t.rejects(register({ webhooks: {}, authorize: () => true }), { message: /"webhooks" must be a Webhooks instance/ })
  await t.rejects(register({ webhooks, authorize: () => true, sampleIntervalMs: 5 }), { message: /"sampleIntervalMs" must be an integer of at least 100/ })
  await t.rejects(register({ webhooks, authorize: () => true, prefix: 'ops' }), { message: /"prefix" must be a path starting with "\/"/ })
  await t.rejects(register({ webhooks, authorize: () => true, title: 7 }), { message: /"title" must be a string/ })
  t.throws(() => dashboardHandler(null as never), { message: /the dashboard: options must be an object with "webhooks" and "authorize"/ })
})

t.test('escapeHtml: markup and terminal escapes become inert text', async (t) => {
  t.equal(escapeHtml(XSS), '&lt;img src=x onerror=alert(1)&gt;')
  t.equal(escapeHtml(TERMINAL), '\\u001b[2J')
  t.equal(escapeHtml('"\'&'), '&quot;&#39;&amp;')
  t.equal(escapeHtml('line\nnext\ttab'), 'line\nnext\ttab', 'newlines and tabs stay')
  t.equal(escapeHtml('\u202eevil'), '\\u202eevil', 'a bidi override is shown, not obeyed')
})

t.test('without credentials every page and action answers 401, with a challenge; wrong ones too', async (t) => {
  const { webhooks } = sqliteReceiver(t)
  const app = await fastifyApp(t, webhooks)
  for (const path of PAGES) {
    const none = await app.inject({ method: 'GET', url: PREFIX + path })
    t.equal(none.statusCode, 401, `GET ${path}`)
    t.match(none.headers['www-authenticate'], /^Basic realm=/)
    const wrong = await app.inject({ method: 'GET', url: PREFIX + path, headers: { authorization: 'Basic ' + Buffer.from('operator:wrong').toString('base64') } })
    t.equal(wrong.statusCode, 401, `GET ${path} with a wrong password`)
  }
  for (const path of ACTIONS) {
    t.equal((await app.inject({ method: 'POST', url: PREFIX + path, headers: SAME_ORIGIN, payload: form({ id: 'x' }) })).statusCode, 401, `POST ${path}`)
    // Not even a body Fastify cannot parse gets past the check first.
    t.equal((await app.inject({ method: 'POST', url: PREFIX + path, headers: { 'content-type': 'application/json' }, payload: '{' })).statusCode, 401, `POST ${path} as JSON`)
  }
  t.equal((await app.inject({ method: 'GET', url: PREFIX + '/', headers: { authorization: BASIC } })).statusCode, 200, 'the right credentials open it')
})

t.test('authorize answering false (or throwing) gives 403 on every page and action; it sees the request', async (t) => {
  const { webhooks } = sqliteReceiver(t)
  const seen: string[] = []
  const app = await fastifyApp(t, webhooks, {
    basicAuth: undefined,
    authorize: (request) => {
      seen.push(request.url)
      if (request.headers['x-boom'] === '1') throw new Error('boom')
      return request.headers['x-role'] === 'ops'
    }
  })
  for (const path of PAGES) t.equal((await app.inject({ method: 'GET', url: PREFIX + path })).statusCode, 403, `GET ${path}`)
  for (const path of ACTIONS) t.equal((await app.inject({ method: 'POST', url: PREFIX + path, headers: SAME_ORIGIN, payload: form({ id: 'x' }) })).statusCode, 403, `POST ${path}`)
  t.equal((await app.inject({ method: 'GET', url: PREFIX + '/', headers: { 'x-role': 'ops', 'x-boom': '1' } })).statusCode, 403, 'a throwing authorize refuses')
  t.equal((await app.inject({ method: 'GET', url: PREFIX + '/', headers: { 'x-role': 'ops' } })).statusCode, 200)
  t.ok(seen.includes(PREFIX + '/dead'), 'authorize is given the framework request')
})

t.test('every answer carries a strict CSP, and no page has an inline script or style', async (t) => {
  const { webhooks } = sqliteReceiver(t)
  const app = await fastifyApp(t, webhooks)
  for (const path of ['/', '/events', '/dead']) {
    const page = await app.inject({ method: 'GET', url: PREFIX + path, headers: { authorization: BASIC } })
    t.equal(page.statusCode, 200, path)
    t.match(page.headers['content-security-policy'], /default-src 'none'; script-src 'self'; style-src 'self';/)
    t.notMatch(page.headers['content-security-policy'], /unsafe-inline/)
    t.equal(page.headers['x-frame-options'], 'DENY')
    t.notMatch(page.body, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script')
    t.notMatch(page.body, /<style|\sstyle=/, 'no inline style')
    t.notMatch(page.body, new RegExp(OPERATOR.password), 'the password is never rendered')
    t.notMatch(page.body, /whsec_/, 'nor the webhook secret')
  }
})

t.test('a dead letter is found by id, shown as escaped text, and re-driven through the page: its handler runs', async (t) => {
  const { webhooks, handled, failing } = await deadEvent(t, 'evt_dash_1', { note: `${XSS} ${TERMINAL}` })
  const app = await fastifyApp(t, webhooks)
  const list = await app.inject({ method: 'GET', url: PREFIX + '/dead', headers: { authorization: BASIC } })
  t.match(list.body, `href="${PREFIX}/events?q=evt_dash_1"`)
  t.notMatch(list.body, /<img/, 'the last error is text')
  t.match(list.body, '&lt;img src=x onerror=alert(1)&gt; \\u001b[2J', 'the error shows its markup and escape as text')
  t.notOk(list.body.includes('\u001b'), 'no raw escape byte reaches the page')

  const found = await app.inject({ method: 'GET', url: PREFIX + '/events?q=evt_dash_1', headers: { authorization: BASIC } })
  t.match(found.body, /<dd data-field="state" class="state-dead">dead<\/dd>/)
  t.match(found.body, /<pre data-field="envelope">\{\n {2}&quot;id&quot;: &quot;evt_dash_1&quot;/, 'the envelope, pretty and escaped')
  t.match(found.body, '&quot;note&quot;: &quot;&lt;img src=x onerror=alert(1)&gt; \\u001b[2J&quot;')
  t.notMatch(found.body, /<img/)

  failing.on = false
  const redriven = await app.inject({
    method: 'POST',
    url: PREFIX + '/actions/redrive',
    headers: { ...SAME_ORIGIN, authorization: BASIC },
    payload: form({ id: 'evt_dash_1', token: tokenOn(found.body, 'redrive') })
  })
  t.equal(redriven.statusCode, 303)
  t.equal(redriven.headers.location, `${PREFIX}/events?q=evt_dash_1&done=redriven`)
  await until(() => handled.includes('evt_dash_1'), 'the re-driven handler')
  await until(async () => (await webhooks.inbox.outcome?.('evt_dash_1'))?.state === 'done', 'the event to be done')
  const after = await app.inject({ method: 'GET', url: redriven.headers.location as string, headers: { authorization: BASIC } })
  t.match(after.body, 'Re-driven: the event is queued again')
  const again = await app.inject({ method: 'POST', url: PREFIX + '/actions/redrive', headers: { ...SAME_ORIGIN, authorization: BASIC }, payload: form({ id: 'evt_dash_1', token: tokenOn(found.body, 'redrive') }) })
  t.equal(again.statusCode, 409, 'an event no longer dead is not re-driven twice')
})

t.test('actions need the token and a same-origin request; refused ones change nothing', async (t) => {
  const { webhooks, handled, failing } = await deadEvent(t, 'evt_dash_2')
  failing.on = false
  const app = await fastifyApp(t, webhooks)
  const page = await app.inject({ method: 'GET', url: PREFIX + '/dead', headers: { authorization: BASIC } })
  const token = tokenOn(page.body, 'redrive')
  const attempt = async (headers: Record<string, string>, fields: Record<string, string>) =>
    await app.inject({ method: 'POST', url: PREFIX + '/actions/redrive', headers: { authorization: BASIC, ...headers }, payload: form(fields) })
  t.equal((await attempt(SAME_ORIGIN, { id: 'evt_dash_2' })).statusCode, 403, 'no token')
  t.equal((await attempt(SAME_ORIGIN, { id: 'evt_dash_2', token: token.slice(0, -2) + 'AA' })).statusCode, 403, 'a wrong token')
  t.equal((await attempt(SAME_ORIGIN, { id: 'evt_dash_2', token: tokenOn(page.body, 'purge') })).statusCode, 403, "another action's token")
  t.equal((await attempt({ ...SAME_ORIGIN, origin: 'https://evil.example' }, { id: 'evt_dash_2', token })).statusCode, 403, 'a cross-origin Origin')
  t.equal((await attempt({ ...SAME_ORIGIN, origin: 'null' }, { id: 'evt_dash_2', token })).statusCode, 403, 'an opaque origin')
  t.equal((await attempt({ ...SAME_ORIGIN, 'sec-fetch-site': 'cross-site' }, { id: 'evt_dash_2', token })).statusCode, 403, 'Sec-Fetch-Site: cross-site')
  t.equal((await attempt({ ...SAME_ORIGIN, 'sec-fetch-site': 'same-site' }, { id: 'evt_dash_2', token })).statusCode, 403, 'Sec-Fetch-Site: same-site (a sibling subdomain)')
  t.equal((await webhooks.inbox.outcome?.('evt_dash_2'))?.state, 'dead', 'still dead')
  t.same(handled, [])
  t.equal((await attempt(SAME_ORIGIN, { id: 'evt_dash_2', token })).statusCode, 303, 'the same request, same-origin with its token, runs')
  await until(() => handled.includes('evt_dash_2'), 'the handler')
})

t.test('read-only: no action is shown, and none works, even with a token from another dashboard', async (t) => {
  const { webhooks } = await deadEvent(t, 'evt_dash_3')
  const writable = await fastifyApp(t, webhooks)
  const token = tokenOn((await writable.inject({ method: 'GET', url: PREFIX + '/dead', headers: { authorization: BASIC } })).body, 'redrive')
  const app = await fastifyApp(t, webhooks, { readOnly: true })
  for (const path of ['/', '/events?q=evt_dash_3', '/dead']) {
    const page = await app.inject({ method: 'GET', url: PREFIX + path, headers: { authorization: BASIC } })
    t.notMatch(page.body, /method="post"/i, `${path} has no action`)
    t.match(page.body, 'read-only')
  }
  for (const path of ACTIONS) {
    const refused = await app.inject({ method: 'POST', url: PREFIX + path, headers: { ...SAME_ORIGIN, authorization: BASIC }, payload: form({ id: 'evt_dash_3', before: '2100-01-01', confirm: 'yes', token }) })
    t.equal(refused.statusCode, 403, `POST ${path}`)
    t.match(refused.body, 'this dashboard is read-only', 'refused for being read-only, before any token is looked at')
  }
  t.equal((await webhooks.inbox.outcome?.('evt_dash_3'))?.state, 'dead')
})

t.test('purge asks first, then deletes finished events before the date', async (t) => {
  const { webhooks } = await deadEvent(t, 'evt_dash_4')
  const app = await fastifyApp(t, webhooks)
  const token = tokenOn((await app.inject({ method: 'GET', url: PREFIX + '/dead', headers: { authorization: BASIC } })).body, 'purge')
  const headers = { ...SAME_ORIGIN, authorization: BASIC }
  const asked = await app.inject({ method: 'POST', url: PREFIX + '/actions/purge', headers, payload: form({ before: '2100-01-01', token }) })
  t.equal(asked.statusCode, 200)
  t.match(asked.body, 'Delete every done and dead event that finished before <strong>2100-01-01T00:00:00.000Z</strong>?')
  t.equal((await webhooks.inbox.outcome?.('evt_dash_4'))?.state, 'dead', 'nothing deleted before the confirmation')
  const confirmed = await app.inject({ method: 'POST', url: PREFIX + '/actions/purge', headers, payload: form({ before: '2100-01-01T00:00:00.000Z', confirm: 'yes', token: tokenOn(asked.body, 'purge') }) })
  t.equal(confirmed.statusCode, 303)
  t.equal(confirmed.headers.location, `${PREFIX}/dead?purged=1&done=0&dead=1`)
  t.equal(await webhooks.inbox.outcome?.('evt_dash_4'), undefined, 'purged')
  t.equal((await app.inject({ method: 'POST', url: PREFIX + '/actions/purge', headers, payload: form({ before: 'soon', token }) })).statusCode, 400)
})

t.test('re-drive every dead letter: the count is shown first, then each handler runs', async (t) => {
  const { webhooks, handled, failing } = await deadEvent(t, 'evt_all_1')
  await webhooks.receive(delivery(event('evt_all_2')))
  await until(async () => (await webhooks.inbox.outcome?.('evt_all_2'))?.state === 'dead', 'the second event to be dead')
  const app = await fastifyApp(t, webhooks)
  const headers = { ...SAME_ORIGIN, authorization: BASIC }
  const list = await app.inject({ method: 'GET', url: PREFIX + '/dead', headers: { authorization: BASIC } })
  const asked = await app.inject({ method: 'POST', url: PREFIX + '/actions/redrive-all', headers, payload: form({ token: tokenOn(list.body, 'redrive-all') }) })
  t.equal(asked.statusCode, 200)
  t.match(asked.body, 'Queue <strong>all 2</strong> dead event(s) again')
  t.same(handled, [], 'nothing re-driven before the confirmation')
  failing.on = false
  const confirmed = await app.inject({ method: 'POST', url: PREFIX + '/actions/redrive-all', headers, payload: form({ confirm: 'yes', token: tokenOn(asked.body, 'redrive-all') }) })
  t.equal(confirmed.statusCode, 303)
  t.equal(confirmed.headers.location, `${PREFIX}/dead?redriven=2&skipped=0`)
  await until(() => handled.length === 2, 'both handlers')
  t.same([...handled].sort(), ['evt_all_1', 'evt_all_2'])
  t.match((await app.inject({ method: 'GET', url: confirmed.headers.location as string, headers: { authorization: BASIC } })).body, 'Re-drove 2 dead event(s).')
  t.equal((await app.inject({ method: 'POST', url: PREFIX + '/actions/redrive-all', headers, payload: form({ confirm: 'yes', token: tokenOn(list.body, 'redrive') }) })).statusCode, 403, "the single re-drive's token does not re-drive all")
})

t.test('the overview counts deliveries and events by state; its JSON feeds the live refresh', async (t) => {
  const { webhooks } = await deadEvent(t, 'evt_dash_5')
  await webhooks.receive(delivery(event('evt_dash_5')))
  const app = await fastifyApp(t, webhooks)
  const page = await app.inject({ method: 'GET', url: PREFIX + '/', headers: { authorization: BASIC } })
  t.match(page.body, '<span data-stat="stats.deliveries.accepted">1</span>')
  t.match(page.body, '<span data-stat="stats.deliveries.duplicate">1</span>')
  t.match(page.body, '<span data-stat="counts.dead">1</span>')
  t.match(page.body, '<dt>oldest pending</dt><dd><span data-stat="oldestPending">none waiting</span></dd>')
  t.match(page.body, '<div id="chart"')
  await webhooks.receive({ ...delivery(event('evt_dash_6')), signature: 'sha256=' + '0'.repeat(64) })
  const json = JSON.parse((await app.inject({ method: 'GET', url: PREFIX + '/api/overview', headers: { authorization: BASIC } })).body)
  t.equal(json.stats.deliveries.refused, 1)
  t.equal(json.stats.deliveries.refusedBy.SIGNATURE_MISMATCH, 1)
  t.same(json.counts, { pending: 0, done: 0, dead: 1 })
  t.equal(json.oldestPending, 'none waiting')
  t.equal(json.health.status, 'ok')
  t.ok(json.samples.length >= 1, 'samples are kept')
  const last = json.samples.at(-1).t
  const newer = JSON.parse((await app.inject({ method: 'GET', url: `${PREFIX}/api/overview?since=${last}`, headers: { authorization: BASIC } })).body)
  t.ok(newer.samples.every((sample: { t: number }) => sample.t > last), 'since= brings only newer samples')
})

t.test('the overview shows how long the oldest pending event has waited', async (t) => {
  // No handler in this process: a durable inbox claims nothing, so the event waits.
  const webhooks = receiver(sqliteInbox({ path: join(tempDir(t), 'inbox.db') }))
  t.teardown(() => webhooks.close())
  t.equal((await webhooks.receive(delivery(event('evt_waiting')))).status, 200)
  const app = await fastifyApp(t, webhooks)
  const json = JSON.parse((await app.inject({ method: 'GET', url: PREFIX + '/api/overview', headers: { authorization: BASIC } })).body)
  t.same(json.counts, { pending: 1, done: 0, dead: 0 })
  t.match(json.oldestPending, /^\d+ s$/)
})

t.test('the in-memory inbox: the pages say what it cannot show instead of empty tables', async (t) => {
  const webhooks = new Webhooks({ secret: 'whsec_x' })
  t.teardown(() => webhooks.close())
  const app = await fastifyApp(t, webhooks)
  const get = async (path: string) => (await app.inject({ method: 'GET', url: PREFIX + path, headers: { authorization: BASIC } })).body
  t.match(await get('/'), 'This inbox does not count events by state')
  t.match(await get('/events?q=evt_1'), 'This inbox keeps no record of events')
  t.match(await get('/dead'), 'This inbox keeps no dead letters')
  t.notMatch(await get('/dead'), /<table/)
  const refused = await app.inject({ method: 'POST', url: PREFIX + '/actions/redrive', headers: { ...SAME_ORIGIN, authorization: BASIC }, payload: form({ id: 'x', token: 'x' }) })
  t.equal(refused.statusCode, 403)
})

t.test('the Events page lists events by filter where the inbox can (events()), and says so where it cannot', async (t) => {
  const { webhooks, failing } = await deadEvent(t, 'evt_list_dead')
  failing.on = false
  await webhooks.receive(delivery(event('evt_list_done')))
  await until(async () => (await webhooks.inbox.outcome?.('evt_list_done'))?.state === 'done', 'the event to be done')
  const app = await fastifyApp(t, webhooks)
  const get = async (path: string) => (await app.inject({ method: 'GET', url: PREFIX + path, headers: { authorization: BASIC } })).body
  const all = await get('/events')
  t.match(all, `href="${PREFIX}/events?q=evt_list_dead"`)
  t.match(all, `href="${PREFIX}/events?q=evt_list_done"`)
  const dead = await get('/events?state=dead&type=action.completed&since=2000-01-01T00:00')
  t.match(dead, `href="${PREFIX}/events?q=evt_list_dead"`)
  t.notMatch(dead, 'evt_list_done', 'the filter is applied')
  t.match(dead, '<option value="dead" selected>dead</option>', 'the form keeps the filter')
  t.match(await get('/events?until=2000-01-01'), 'No event matches.')
  t.match(await get('/events?state=stuck'), 'Ignored: &quot;stuck&quot; is no state')
  const memory = new Webhooks({ secret: 'whsec_x' })
  t.teardown(() => memory.close())
  const memoryApp = await fastifyApp(t, memory)
  t.match((await memoryApp.inject({ method: 'GET', url: PREFIX + '/events', headers: { authorization: BASIC } })).body, 'This inbox keeps no record of events')
})

t.test('the overview, with everything it loads, is under 150 KB gzipped (docs/dashboard.md states the number)', async (t) => {
  const { webhooks } = sqliteReceiver(t)
  const app = await fastifyApp(t, webhooks)
  const files = ['/', '/assets/dashboard.css', '/assets/dashboard.js', '/assets/uPlot.iife.min.js', '/api/overview']
  let raw = 0
  let compressed = 0
  for (const path of files) {
    const answer = await app.inject({ method: 'GET', url: PREFIX + path, headers: { authorization: BASIC } })
    t.equal(answer.statusCode, 200, path)
    raw += answer.rawPayload.length
    compressed += gzipSync(answer.rawPayload, { level: 6 }).length
  }
  t.comment(`overview transfer: ${raw} bytes, ${compressed} bytes gzipped`)
  t.ok(compressed < 150_000, `${compressed} bytes gzipped`)
})

t.test('docs/dashboard.md: behind the app\'s own onRequest hook, registered in a prefixed context', async (t) => {
  const { webhooks } = sqliteReceiver(t)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(async function ops (ops) {
    ops.decorateRequest('operator', null)
    ops.addHook('onRequest', async (request, reply) => {
      const operator = request.headers['x-session'] === 'ops-session' ? { roles: ['ops'] } : null
      if (operator === null) return await reply.code(401).send()
      ;(request as unknown as { operator: unknown }).operator = operator
    })
    await ops.register(dashboard, { webhooks, prefix: '/webhooks', authorize: (request) => (request as unknown as { operator: { roles: string[] } }).operator.roles.includes('ops') })
  }, { prefix: '/ops' })
  await app.ready()
  t.equal((await app.inject({ method: 'GET', url: '/ops/webhooks/' })).statusCode, 401, 'the app\'s hook answers first')
  const page = await app.inject({ method: 'GET', url: '/ops/webhooks/dead', headers: { 'x-session': 'ops-session' } })
  t.equal(page.statusCode, 200)
  t.match(page.body, 'action="/ops/webhooks/actions/purge"', 'links and forms carry the whole prefix')
  t.match(page.body, 'href="/ops/webhooks/assets/dashboard.css"')
})

t.test('a store that fails on a page or an action answers 503 with what it said, and is logged', async (t) => {
  const { webhooks } = sqliteReceiver(t)
  const app = await fastifyApp(t, webhooks)
  const inbox = webhooks.inbox as unknown as { deadLetters: () => Promise<never>, purge: () => Promise<never> }
  inbox.deadLetters = async () => { throw new Error('database is locked') }
  const answer = await app.inject({ method: 'GET', url: PREFIX + '/dead', headers: { authorization: BASIC } })
  t.equal(answer.statusCode, 503)
  t.equal(answer.headers['retry-after'], '5')
  t.match(answer.body, 'the store did not answer: database is locked')
  t.match(answer.headers['content-security-policy'], /default-src 'none'/)
  t.match(webhooks.log.find((entry) => entry.msg === 'the dashboard could not read or change the store'), { level: 'error', fields: { path: '/dead', err: { message: 'database is locked' } } })
})

t.test('samples: a bounded ring of per-interval deltas', async (t) => {
  const samples = new Samples(3)
  const stats = (accepted: number) => ({ deliveries: { accepted, duplicate: 0, duplicateDiffers: 0, refused: 0, refusedBy: {} }, queue: { waiting: 0, running: 0 }, handlers: { succeeded: 0, retried: 0, failed: 0 }, deadLetters: 0 }) as never
  for (const [index, accepted] of [0, 2, 5, 5, 9].entries()) samples.take(stats(accepted), (index + 1) * 1000)
  t.same(samples.list().map((sample) => [sample.t, sample.accepted]), [[3, 3], [4, 0], [5, 4]])
  // Faster than one a second, x must still rise: uPlot needs increasing x values.
  samples.take(stats(9), 5250)
  t.same(samples.list().map((sample) => sample.t), [4, 5, 5.25])
})

t.test('the dashboard adds nothing to the webhook route: no hook, no decorator outside its prefix', async (t) => {
  const webhooks = new Webhooks({ secret: 'whsec_x' })
  t.teardown(() => webhooks.close())
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(dashboard, { webhooks, prefix: PREFIX, basicAuth: OPERATOR })
  app.post('/webhooks/sir', async () => 'ok')
  await app.ready()
  t.equal((await app.inject({ method: 'POST', url: '/webhooks/sir', headers: { 'content-type': 'application/json' }, payload: '{}' })).statusCode, 200, 'the app keeps its JSON parser')
  t.equal(app.printRoutes().includes('ops/webhooks'), true)
})
