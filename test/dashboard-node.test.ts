import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import t, { type Test } from 'tap'
import { dashboardHandler } from '../src/dashboard/index.js'
import { delivery, event, until } from './inbox-contract/support.js'
import { BASIC, OPERATOR, PREFIX, form, sqliteReceiver, tokenOn } from './dashboard/support.js'

async function listen (t: Test, server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function deadSetup (t: Test, id: string) {
  const setup = sqliteReceiver(t)
  await setup.webhooks.receive(delivery(event(id)))
  await until(async () => (await setup.webhooks.inbox.outcome?.(id))?.state === 'dead', 'the event to be dead')
  return setup
}

t.test('node:http: 401 without credentials, pages with them, and a re-drive through a real socket runs the handler', async (t) => {
  const { webhooks, handled, failing } = await deadSetup(t, 'evt_node_1')
  const listener = dashboardHandler({ webhooks, prefix: PREFIX, basicAuth: OPERATOR })
  t.teardown(() => { listener.close() })
  const origin = await listen(t, createServer(listener))
  t.equal((await fetch(origin + PREFIX + '/dead')).status, 401)
  t.equal((await fetch(origin + PREFIX + '/actions/redrive', { method: 'POST', body: form({ id: 'evt_node_1' }), headers: { 'content-type': 'application/x-www-form-urlencoded' } })).status, 401)
  t.equal((await fetch(origin + '/elsewhere', { headers: { authorization: BASIC } })).status, 404, 'outside the prefix: not the dashboard')
  const page = await fetch(origin + PREFIX + '/events?q=evt_node_1', { headers: { authorization: BASIC } })
  t.equal(page.status, 200)
  const html = await page.text()
  t.match(html, 'class="state-dead">dead<')
  const post = async (headers: Record<string, string>) => await fetch(origin + PREFIX + '/actions/redrive', {
    method: 'POST',
    redirect: 'manual',
    body: form({ id: 'evt_node_1', token: tokenOn(html, 'redrive') }),
    headers: { authorization: BASIC, 'content-type': 'application/x-www-form-urlencoded', ...headers }
  })
  t.equal((await post({ origin: 'http://evil.example' })).status, 403, 'cross-origin')
  failing.on = false
  const redriven = await post({ origin })
  t.equal(redriven.status, 303)
  await until(() => handled.includes('evt_node_1'), 'the handler')
  const head = await fetch(origin + PREFIX + '/', { method: 'HEAD', headers: { authorization: BASIC } })
  t.equal(head.status, 200)
  t.equal(await head.text(), '', 'HEAD: headers only')
  const put = await fetch(origin + PREFIX + '/dead', { method: 'PUT', headers: { authorization: BASIC } })
  t.equal(put.status, 405)
  t.equal(put.headers.get('allow'), 'GET, HEAD, POST')
  const big = await fetch(origin + PREFIX + '/actions/redrive', { method: 'POST', body: 'x'.repeat(20_000), headers: { authorization: BASIC, 'content-type': 'application/x-www-form-urlencoded' } })
  t.equal(big.status, 413)
})

t.test('Express: mounted with app.use under its path, behind the app\'s own auth middleware, with its body parser', async (t) => {
  const { webhooks, handled, failing } = await deadSetup(t, 'evt_express_1')
  const app = express()
  // The app's own authentication first; the dashboard's authorize reads what it set.
  app.use(PREFIX, (request, response, next) => {
    if (request.headers['x-session'] !== 'ops') { response.status(401).end(); return }
    (request as unknown as { user: string }).user = 'ops'
    next()
  })
  app.use(express.urlencoded({ extended: false }))
  const listener = dashboardHandler({ webhooks, prefix: PREFIX, authorize: (request) => (request as unknown as { user?: string }).user === 'ops' })
  t.teardown(() => { listener.close() })
  app.use(PREFIX, listener)
  const origin = await listen(t, createServer(app))
  t.equal((await fetch(origin + PREFIX + '/dead')).status, 401, 'the app refuses first')
  const page = await fetch(origin + PREFIX + '/dead', { headers: { 'x-session': 'ops' } })
  t.equal(page.status, 200)
  const html = await page.text()
  t.match(html, `href="${PREFIX}/events?q=evt_express_1"`, 'links carry the full mount path')
  failing.on = false
  const redriven = await fetch(origin + PREFIX + '/actions/redrive', {
    method: 'POST',
    redirect: 'manual',
    body: form({ id: 'evt_express_1', token: tokenOn(html, 'redrive') }),
    headers: { 'x-session': 'ops', 'content-type': 'application/x-www-form-urlencoded', origin }
  })
  t.equal(redriven.status, 303)
  await until(() => handled.includes('evt_express_1'), 'the handler')
})

t.test('the overview reads the store\'s counts at most once every 2 s however often pages poll, and afresh after an action', async (t) => {
  const { webhooks } = await deadSetup(t, 'evt_node_counts')
  const inbox = webhooks.inbox as unknown as { counts: () => Promise<unknown> }
  const counts = inbox.counts.bind(inbox)
  let reads = 0
  inbox.counts = async () => { reads += 1; return await counts() }
  const listener = dashboardHandler({ webhooks, prefix: PREFIX, basicAuth: OPERATOR })
  t.teardown(() => { listener.close() })
  const origin = await listen(t, createServer(listener))
  for (let poll = 0; poll < 10; poll += 1) {
    const answer = await fetch(origin + PREFIX + '/api/overview', { headers: { authorization: BASIC } })
    t.equal(answer.status, 200)
    t.match(await answer.json(), { counts: { dead: 1 } })
  }
  t.equal(reads, 1, 'ten polls, one read of the store')
  const html = await (await fetch(origin + PREFIX + '/events?q=evt_node_counts', { headers: { authorization: BASIC } })).text()
  const redriven = await fetch(origin + PREFIX + '/actions/redrive', {
    method: 'POST',
    redirect: 'manual',
    body: form({ id: 'evt_node_counts', token: tokenOn(html, 'redrive') }),
    headers: { authorization: BASIC, origin, 'content-type': 'application/x-www-form-urlencoded' }
  })
  t.equal(redriven.status, 303)
  await fetch(origin + PREFIX + '/api/overview', { headers: { authorization: BASIC } })
  t.equal(reads, 2, 'an action makes the next overview read the store again')
})
