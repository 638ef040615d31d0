import t from 'tap'
import { MemoryInbox } from '../src/core/memory-inbox.js'
import { delivery, event, receiver, sleep, until } from './inbox-contract/support.js'
import { BASIC, PREFIX, SAME_ORIGIN, fastifyApp, form, tokenOn, withHandler, type sqliteReceiver } from './dashboard/support.js'

/** A receiver on the memory inbox (flow control in this process) with two handlers, one paced. */
function memoryReceiver (t: Parameters<typeof sqliteReceiver>[0]) {
  const webhooks = receiver(new MemoryInbox())
  t.teardown(() => webhooks.close())
  const ran: string[] = []
  webhooks.on('action.completed', async function award (event) { await sleep(15); ran.push(`award:${event.id}`) })
  webhooks.on('action.completed', function notify (event) { ran.push(`notify:${event.id}`) }, { concurrency: 2, rate: { perSecond: 100, burst: 10 } })
  return { webhooks, ran }
}

/** Cells of one handler's row, by their data-field. */
function cell (page: string, handler: string, field: string): string | undefined {
  const row = new RegExp(`<tr data-handler="${handler}">([\\s\\S]*?)</tr>`).exec(page)?.[1] ?? ''
  return new RegExp(`data-field="${field}">([^<]*)<`).exec(row)?.[1]
}

t.test('the Handlers page shows each handler\'s runs, durations and pace after real deliveries, and is in the nav', async (t) => {
  const { webhooks, ran } = memoryReceiver(t)
  const app = await fastifyApp(t, webhooks)
  for (const id of ['evt_h1', 'evt_h2', 'evt_h3']) t.equal((await webhooks.receive(delivery(event(id)))).status, 200)
  await until(() => ran.length === 6, 'every run')
  const page = await app.inject({ method: 'GET', url: PREFIX + '/handlers', headers: { authorization: BASIC } })
  t.equal(page.statusCode, 200)
  t.equal(cell(page.body, 'award', 'runs'), '3')
  t.equal(cell(page.body, 'award', 'succeeded'), '3')
  t.equal(cell(page.body, 'notify', 'failed'), '0')
  t.equal(cell(page.body, 'award', 'paused'), 'running')
  const p50 = Number(/^(\d+) ms$/.exec(cell(page.body, 'award', 'p50') ?? '')?.[1])
  t.ok(p50 >= 14 && p50 < 1000, `award's p50 is at least its 15 ms sleep: ${p50} ms`)
  t.match(cell(page.body, 'notify', 'p99'), / ms$/, 'a quick handler\'s p99, in ms')
  t.match(page.body, '2 at once; 100/s, burst 10', 'notify\'s limits as registered')
  t.match(page.body, 'The pause is kept in this process')
  const overview = await app.inject({ method: 'GET', url: PREFIX + '/', headers: { authorization: BASIC } })
  t.match(overview.body, `<nav>`)
  t.equal(overview.body.split(`<a href="${PREFIX}/handlers">Handlers</a>`).length - 1, 2, 'in the nav, and on the overview\'s handler counts')
})

t.test('pausing a handler with its button stops its runs: deliveries still answer 200; resuming runs them', async (t) => {
  const { webhooks, ran } = memoryReceiver(t)
  const app = await fastifyApp(t, webhooks)
  const page = await app.inject({ method: 'GET', url: PREFIX + '/handlers', headers: { authorization: BASIC } })
  const post = async (action: string, handler: string, token: string) =>
    await app.inject({ method: 'POST', url: `${PREFIX}/actions/${action}`, headers: { ...SAME_ORIGIN, authorization: BASIC }, payload: form({ handler, token }) })
  const paused = await post('pause', 'award', tokenOn(page.body, 'pause'))
  t.equal(paused.statusCode, 303)
  t.equal(paused.headers.location, `${PREFIX}/handlers?done=paused&handler=award`)
  t.equal(webhooks.stats().flow.handlers.award?.paused, true, 'paused in the receiver')
  t.equal((await webhooks.receive(delivery(event('evt_p1')))).status, 200, 'a delivery after the pause is taken')
  await until(() => ran.includes('notify:evt_p1'), 'the other handler')
  await sleep(100)
  t.notOk(ran.includes('award:evt_p1'), 'the paused handler did not run')
  const after = await app.inject({ method: 'GET', url: paused.headers.location as string, headers: { authorization: BASIC } })
  t.match(after.body, 'Handler award paused')
  t.equal(cell(after.body, 'award', 'paused'), 'paused')
  t.match(after.body, /deferred[\s\S]*paused 1/, 'its run deferred because paused')
  const resumed = await post('resume', 'award', tokenOn(after.body, 'resume'))
  t.equal(resumed.statusCode, 303)
  await until(() => ran.includes('award:evt_p1'), 'the resumed handler to run the waiting event')

  const all = await post('pause', '', tokenOn(after.body, 'pause'))
  t.equal(all.statusCode, 303)
  t.equal(webhooks.stats().flow.pausedAll, true, 'Pause all')
  const allPage = await app.inject({ method: 'GET', url: all.headers.location as string, headers: { authorization: BASIC } })
  t.match(allPage.body, 'Every handler is paused.')
  t.equal((await post('resume', '', tokenOn(allPage.body, 'resume'))).statusCode, 303)
  t.equal(webhooks.stats().flow.pausedAll, false, 'Resume all')
  t.equal((await post('pause', 'nobody', tokenOn(after.body, 'pause'))).statusCode, 400, 'a name the page never showed')
})

t.test('pause is refused cross-site, without the token and in read-only mode', async (t) => {
  const { webhooks } = memoryReceiver(t)
  const app = await fastifyApp(t, webhooks)
  const page = await app.inject({ method: 'GET', url: PREFIX + '/handlers', headers: { authorization: BASIC } })
  const token = tokenOn(page.body, 'pause')
  const attempt = async (headers: Record<string, string>, fields: Record<string, string>) =>
    (await app.inject({ method: 'POST', url: PREFIX + '/actions/pause', headers: { authorization: BASIC, ...headers }, payload: form(fields) })).statusCode
  t.equal(await attempt({ ...SAME_ORIGIN, origin: 'https://evil.example' }, { handler: 'award', token }), 403, 'another origin')
  t.equal(await attempt({ ...SAME_ORIGIN, 'sec-fetch-site': 'cross-site' }, { handler: 'award', token }), 403, 'Sec-Fetch-Site: cross-site')
  t.equal(await attempt(SAME_ORIGIN, { handler: 'award', token: token.slice(1) }), 403, 'a wrong token')
  t.equal(await attempt(SAME_ORIGIN, { handler: 'award' }), 403, 'no token')
  t.equal(await attempt({ ...SAME_ORIGIN, authorization: 'Basic eDp5' }, { handler: 'award', token }), 401, 'wrong credentials')
  t.same(webhooks.stats().flow.handlers, {}, 'nothing was paused')

  const readOnly = await fastifyApp(t, webhooks, { readOnly: true })
  const shown = await readOnly.inject({ method: 'GET', url: PREFIX + '/handlers', headers: { authorization: BASIC } })
  t.notMatch(shown.body, '/actions/pause', 'no pause button')
  t.notMatch(shown.body, 'Pause all')
  const refused = await readOnly.inject({ method: 'POST', url: PREFIX + '/actions/pause', headers: { ...SAME_ORIGIN, authorization: BASIC }, payload: form({ handler: 'award', token }) })
  t.equal(refused.statusCode, 403)
  t.same(webhooks.stats().flow.handlers, {}, 'still nothing paused')
})

t.test('an inbox without flow control: the page says so and shows no buttons', async (t) => {
  // The memory inbox with its flow store taken away: an inbox that offers none.
  const { webhooks } = withHandler(t, Object.assign(new MemoryInbox(), { flowStore: undefined }) as unknown as MemoryInbox)
  const app = await fastifyApp(t, webhooks)
  const page = await app.inject({ method: 'GET', url: PREFIX + '/handlers', headers: { authorization: BASIC } })
  t.match(page.body, 'This inbox has no flow control, so handlers cannot be paused here')
  t.notMatch(page.body, '/actions/pause')
  t.equal(cell(page.body, 'award', 'runs'), '0', 'its figures are still shown')
})

t.test('with no receiver in the process (the CLI\'s dashboard), the store\'s pause is shown and set by name', async (t) => {
  const inbox = new MemoryInbox()
  const app = await fastifyApp(t, { inbox })
  const page = await app.inject({ method: 'GET', url: PREFIX + '/handlers', headers: { authorization: BASIC } })
  t.match(page.body, 'No receiver runs in this process')
  t.match(page.body, 'No handler is paused.')
  const paused = await app.inject({ method: 'POST', url: PREFIX + '/actions/pause', headers: { ...SAME_ORIGIN, authorization: BASIC }, payload: form({ handler: 'billing', token: tokenOn(page.body, 'pause') }) })
  t.equal(paused.statusCode, 303)
  const after = await app.inject({ method: 'GET', url: paused.headers.location as string, headers: { authorization: BASIC } })
  t.equal(cell(after.body, 'billing', 'paused'), 'paused', 'the store now holds billing paused')
  t.notMatch(after.body, 'data-field="runs"', 'no figures it does not have')
  const resumed = await app.inject({ method: 'POST', url: PREFIX + '/actions/resume', headers: { ...SAME_ORIGIN, authorization: BASIC }, payload: form({ handler: 'billing', token: tokenOn(after.body, 'resume') }) })
  t.equal(resumed.statusCode, 303)
  const last = await app.inject({ method: 'GET', url: PREFIX + '/handlers', headers: { authorization: BASIC } })
  t.match(last.body, 'No handler is paused.')
})
