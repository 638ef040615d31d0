import { mkdirSync } from 'node:fs'
import { createServer } from 'node:http'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import type { Page } from 'playwright-core'
import sirWebhooks from '../src/fastify/plugin.js'
import dashboard from '../src/dashboard/index.js'
import { MemoryInbox } from '../src/core/memory-inbox.js'
import type { Inbox } from '../src/index.js'
import { postgresForTests } from './helpers/postgres.js'
import { redisForTests } from './helpers/redis.js'
import { event, post, sleep, until } from './inbox-contract/support.js'
import { OPERATOR, PREFIX, TERMINAL, XSS, withHandler } from './dashboard/support.js'
import { storeInboxes } from './dashboard/stores.js'
import { chromiumForTests } from './helpers/chromium.js'

const READ_ONLY = PREFIX + '-read-only'

// SIR_DASHBOARD_SCREENSHOTS=1 writes the pictures docs/dashboard.md shows.
const SCREENSHOTS = process.env.SIR_DASHBOARD_SCREENSHOTS === '1' ? join(import.meta.dirname, '..', 'docs', 'images') : undefined

/** The app a user would run: the webhook route and the dashboard, on a real port. */
async function app (t: Test, inbox: Inbox, options: Parameters<typeof withHandler>[2] = {}) {
  const setup = withHandler(t, inbox, options)
  const fastify = Fastify()
  await fastify.register(sirWebhooks, { webhooks: setup.webhooks })
  await fastify.register(dashboard, { webhooks: setup.webhooks, prefix: PREFIX, basicAuth: OPERATOR, sampleIntervalMs: 250 })
  // The same dashboard, read-only, beside it.
  await fastify.register(dashboard, { webhooks: setup.webhooks, prefix: READ_ONLY, basicAuth: OPERATOR, readOnly: true })
  await fastify.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => fastify.close())
  const origin = `http://127.0.0.1:${(fastify.server.address() as AddressInfo).port}`
  return { ...setup, origin, deliver: async (body: unknown) => await post(origin + '/webhooks/sir', body) }
}

/** A page that fails the test on any dialog, script error or console error (a CSP violation is one). */
async function watchedPage (t: Test): Promise<{ page: Page, problems: string[] } | undefined> {
  const browser = await chromiumForTests(t, { httpCredentials: { username: OPERATOR.username, password: OPERATOR.password } })
  if (browser.context === undefined) {
    t.comment(`browser test skipped: ${browser.reason}`)
    return undefined
  }
  const page = await browser.context.newPage()
  const problems: string[] = []
  page.on('dialog', (dialog) => { problems.push(`dialog: ${dialog.message()}`); void dialog.dismiss() })
  page.on('pageerror', (error) => { problems.push(`page error: ${error.message}`) })
  page.on('console', (message) => { if (message.type() === 'error') problems.push(`console error: ${message.text()} (${message.location().url})`) })
  return { page, problems }
}

/**
 * How far the chart's series climb on its canvas: points drawn, not only a DOM
 * element. Any series counts: with a fast handler, "succeeded" is drawn over
 * "accepted" in the same sample.
 */
async function seriesPixels (page: Page, chart = '#chart'): Promise<number> {
  // Runs in the page; the test's TypeScript has no DOM types, hence the one cast.
  return await page.evaluate(([colours, chart]) => {
    interface Canvas { width: number, height: number, getContext (kind: '2d'): { getImageData (x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } }
    const canvas = (globalThis as unknown as { document: { querySelector (selector: string): Canvas | null } }).document.querySelector(`${chart} canvas`)
    if (canvas === null) return -1
    const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height)
    // Rows of the canvas holding a series' colour: a flat line at zero fills two or
    // three, a line that rises to the deliveries' count climbs through many.
    const rows = new Set<number>()
    for (let index = 0; index < data.length; index += 4) {
      const [r, g, b, a] = [data[index] ?? 0, data[index + 1] ?? 0, data[index + 2] ?? 0, data[index + 3] ?? 0]
      if (a > 200 && colours.some(([cr, cg, cb]) => Math.abs(r - (cr ?? 0)) < 8 && Math.abs(g - (cg ?? 0)) < 8 && Math.abs(b - (cb ?? 0)) < 8)) rows.add(Math.floor(index / 4 / canvas.width))
    }
    return rows.size
  }, [SERIES_COLOURS, chart] as const)
}

/** Waits for a number on the page to read `value`: read through the driver, as the operator sees it. */
async function statIs (page: Page, path: string, value: string): Promise<void> {
  await until(async () => await page.textContent(`[data-stat="${path}"]`) === value, `${path} to show ${value}`, 15_000)
}

// dashboard.js's series: accepted, duplicate, refused, succeeded, failed, retried.
type Store = 'memory' | 'sqlite' | 'postgres' | 'bullmq'

// Postgres and Redis are started once, on free ports, when the environment names none
// (in CI, .ci/run does; a missing one then fails the test, as in the inbox tests).
const postgres = await postgresForTests(t)
const redis = await redisForTests(t)

const durableInbox = storeInboxes(postgres, redis, 'dashboard')
/** A fresh inbox on the store, or why there is none here (outside CI only). */
const inboxOn = (t: Test, store: Store): Inbox | string => store === 'memory' ? new MemoryInbox() : durableInbox(t, store)

const SERIES_COLOURS = [[0x2b, 0x7a, 0x0b], [0x7a, 0x7a, 0x7a], [0xb3, 0x26, 0x1e], [0x1f, 0x5f, 0xbf], [0xe0, 0x7b, 0x00], [0x8e, 0x44, 0xad]]

for (const store of ['memory', 'sqlite', 'postgres', 'bullmq'] as const) {
  t.test(`${store}: the overview shows live counts after real signed deliveries, and its chart draws them`, async (t) => {
    const inbox = inboxOn(t, store)
    if (typeof inbox === 'string') return t.comment(`${store} skipped: ${inbox}`)
    const { deliver, failing, origin } = await app(t, inbox)
    failing.on = false
    const watched = await watchedPage(t)
    if (watched === undefined) return
    const { page, problems } = watched
    await page.goto(origin + PREFIX + '/')
    t.equal(await page.textContent('[data-stat="stats.deliveries.accepted"]'), '0')
    // Delivered after the page loaded: only the live refresh can show them.
    for (let index = 0; index < 4; index++) t.equal(await deliver(event(`evt_${store}_live_${index}`)), 200)
    t.equal(await deliver(event(`evt_${store}_live_0`)), 200, 'a duplicate')
    await statIs(page, 'stats.deliveries.accepted', '4')
    // Each waits on its own: a refresh may land between two deliveries.
    await statIs(page, 'stats.deliveries.duplicate', '1')
    await statIs(page, 'stats.handlers.succeeded', '4')
    // The deliveries fall in one sample; a few more samples draw the line through it.
    await until(async () => await seriesPixels(page) > 30, 'the series drawn on the canvas', 15_000)
    t.ok(await seriesPixels(page) > 30, 'the chart has drawn its series, rising above zero')
    // The since-start chart comes with the page and every half minute: a reload brings it now.
    await page.reload()
    await until(async () => await seriesPixels(page, '#chart-history') > 30, 'the since-start series drawn', 15_000)
    t.ok(await seriesPixels(page, '#chart-history') > 30, 'the since-start chart has drawn its series too')
    if (store === 'memory') {
      await page.goto(origin + PREFIX + '/events?q=evt_memory_live_0')
      t.match(await page.textContent('main'), 'This inbox keeps no record of events')
      t.equal(await page.locator('table').count(), 0, 'no empty table')
    } else if (SCREENSHOTS !== undefined && store === 'sqlite') {
      mkdirSync(SCREENSHOTS, { recursive: true })
      await page.goto(origin + PREFIX + '/')
      await until(async () => await seriesPixels(page) > 30, 'the chart', 15_000)
      await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-overview.png'), fullPage: true })
    }
    t.same(problems, [], 'no dialog, script error or CSP violation')
  })
}

for (const store of ['sqlite', 'postgres', 'bullmq'] as const) {
  t.test(`${store}: a dead letter holding <img onerror> and a terminal escape is found by id, shown as text, re-driven with the button, and its handler runs`, async (t) => {
    const inbox = inboxOn(t, store)
    if (typeof inbox === 'string') return t.comment(`${store} skipped: ${inbox}`)
    const { deliver, failing, handled, webhooks, origin } = await app(t, inbox)
    const id = 'evt_browser_dead'
    t.equal(await deliver({ ...event(id), data: { actionId: 'act_1', tokensDistributed: 5, note: `${XSS} ${TERMINAL}` } }), 200)
    await until(async () => (await webhooks.inbox.outcome?.(id))?.state === 'dead', 'the event to be dead')
    const watched = await watchedPage(t)
    if (watched === undefined) return
    const { page, problems } = watched
    await page.goto(origin + PREFIX + '/dead')
    t.equal(await page.locator('img').count(), 0, 'the error in the list made no image')
    await page.goto(origin + PREFIX + '/events')
    await page.fill('input[name="q"]', id)
    await Promise.all([page.waitForURL(/events\?q=/), page.click('form.search button')])
    t.equal(await page.textContent('[data-field="state"]'), 'dead')
    const envelope = await page.textContent('[data-field="envelope"]') ?? ''
    t.match(envelope, '"note": "<img src=x onerror=alert(1)> \\u001b[2J"', 'the payload is shown as the text it is')
    t.match(await page.textContent('[data-field="lastError"]'), `award failed for ${XSS} \\u001b[2J`)
    t.equal(await page.locator('img').count(), 0, 'no element was made from the payload')
    failing.on = false
    const [answer] = await Promise.all([page.waitForResponse(/actions\/redrive/), page.click('text=Re-drive this event')])
    t.equal(answer.status(), 303, `the re-drive was answered ${answer.status()}${answer.status() === 303 ? '' : ': ' + await answer.text()}`)
    await page.waitForURL(/done=redriven/)
    t.match(await page.textContent('[role="status"]'), 'Re-driven')
    await until(() => handled.includes(id), 'the re-driven handler, in the app')
    await until(async () => (await webhooks.inbox.outcome?.(id))?.state === 'done', 'the event to be done')
    t.same(handled, [id])
    t.same(problems, [], 'no dialog, script error or CSP violation')
  })
}

for (const store of ['sqlite', 'postgres', 'bullmq'] as const) {
  t.test(`${store}: an ordered event's record shows its key, its stale flag, the handlers that finished and its attempts; the Handlers page links to the events a handler failed on`, async (t) => {
    const inbox = inboxOn(t, store)
    if (typeof inbox === 'string') return t.comment(`${store} skipped: ${inbox}`)
    const ordering = { key: (event: { type: string, data: unknown }) => event.type.startsWith('action.') ? `action:${(event.data as { actionId: string }).actionId}` : undefined }
    const { deliver, failing, webhooks, origin } = await app(t, inbox, { ordering })
    webhooks.on('action.completed', async function notify () {}, { name: 'notify' })
    const of = (id: string, second: number): Record<string, unknown> => ({ id, type: 'action.completed', createdAt: `2026-05-10T09:12:0${second}Z`, data: { actionId: 'act_7', tokensDistributed: 5 } })
    // The reversal's newer event is handled first; the older one, delivered late, runs stale and its award fails for good.
    failing.on = false
    t.equal(await deliver(of('evt_order_newer', 9)), 200)
    await until(async () => (await webhooks.inbox.outcome?.('evt_order_newer'))?.state === 'done', 'the newer event to be done')
    failing.on = true
    t.equal(await deliver(of('evt_order_older', 3)), 200)
    await until(async () => (await webhooks.inbox.outcome?.('evt_order_older'))?.state === 'dead', 'the older event to be dead')
    const watched = await watchedPage(t)
    if (watched === undefined) return
    const { page, problems } = watched
    await page.goto(origin + PREFIX + '/handlers')
    await Promise.all([page.waitForURL(/events\?handler=award$/), page.click('tr[data-handler="award"] a')])
    t.equal(await page.inputValue('input[name="handler"]'), 'award', 'the filter is filled in')
    t.same(await page.locator('table.events tbody tr td:first-child').allTextContents(), ['evt_order_older'], 'only the event award failed on')
    await page.fill('input[name="handler"]', 'notify')
    await Promise.all([page.waitForURL(/handler=notify/), page.click('form.filters button')])
    t.match(await page.textContent('main'), 'No event matches.', 'notify failed on none')

    await Promise.all([page.waitForURL(/q=evt_order_older/), page.goto(origin + PREFIX + '/events?q=evt_order_older')])
    t.equal(await page.textContent('[data-field="orderingKey"]'), 'action:act_7')
    t.match(await page.textContent('[data-field="stale"]'), /^yes: a newer event of its key was handled first/)
    t.equal(await page.textContent('[data-field="handled"]'), 'notify', 'notify finished; a re-drive runs award only')
    t.same(await page.locator('table.attempts tbody tr td:nth-child(2)').allTextContents(), ['award', 'award'], 'both failed runs of award')
    t.equal(await page.locator('img').count(), 0, 'the error in the attempts made no element')
    if (SCREENSHOTS !== undefined && store === 'sqlite') {
      mkdirSync(SCREENSHOTS, { recursive: true })
      await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-event.png'), fullPage: true })
    }
    await page.goto(origin + PREFIX + '/events?q=evt_order_newer')
    t.equal(await page.textContent('[data-field="stale"]'), 'no')
    // A done event: Postgres lists the handlers from its marks; the others know only that every one finished.
    t.match(await page.textContent('[data-field="handled"]'), /^(every handler|award, notify)$/)
    t.same(problems, [], 'no dialog, script error or CSP violation')
  })
}

t.test('memory: the Handlers page shows runs after real signed deliveries; its Pause button stops the handler\'s runs and Resume runs them', async (t) => {
  const { deliver, failing, handled, webhooks, origin } = await app(t, new MemoryInbox())
  failing.on = false
  for (const id of ['evt_h_1', 'evt_h_2']) t.equal(await deliver(event(id)), 200)
  await until(() => handled.length === 2, 'both handled')
  const watched = await watchedPage(t)
  if (watched === undefined) return
  const { page, problems } = watched
  await page.goto(origin + PREFIX + '/')
  await Promise.all([page.waitForURL(/\/handlers$/), page.click('nav >> text=Handlers')])
  t.equal(await page.textContent('tr[data-handler="award"] [data-field="runs"]'), '2', 'two runs, counted in the app')
  t.equal(await page.textContent('tr[data-handler="award"] [data-field="succeeded"]'), '2')
  t.equal(await page.textContent('tr[data-handler="award"] [data-field="paused"]'), 'running')

  await Promise.all([page.waitForURL(/done=paused/), page.click('tr[data-handler="award"] button:has-text("Pause")')])
  t.match(await page.textContent('[role="status"]'), 'Handler award paused')
  t.equal(await page.textContent('tr[data-handler="award"] [data-field="paused"]'), 'paused')
  t.equal(await deliver(event('evt_h_paused')), 200, 'a delivery while paused is taken')
  await sleep(500)
  t.notOk(handled.includes('evt_h_paused'), 'the paused handler did not run, in the app')
  t.equal(webhooks.stats().flow.handlers.award?.deferred.paused, 1, 'its run was deferred as paused')
  await page.reload()
  t.match(await page.textContent('tr[data-handler="award"]'), 'paused 1', 'the page shows the deferral')
  if (SCREENSHOTS !== undefined) {
    mkdirSync(SCREENSHOTS, { recursive: true })
    await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-handlers.png'), fullPage: true })
  }
  await Promise.all([page.waitForURL(/done=resumed/), page.click('tr[data-handler="award"] button:has-text("Resume")')])
  await until(() => handled.includes('evt_h_paused'), 'the resumed handler to run the waiting event, in the app')
  t.equal(await page.textContent('tr[data-handler="award"] [data-field="paused"]'), 'running')
  t.same(problems, [], 'no dialog, script error or CSP violation')
})

t.test('memory: a cross-origin form cannot pause a handler, and read-only mode has no pause that works', async (t) => {
  const { webhooks, failing, origin } = await app(t, new MemoryInbox())
  failing.on = false
  const watched = await watchedPage(t)
  if (watched === undefined) return
  const { page, problems } = watched
  // The real token, as if it had leaked: the origin check alone must refuse.
  await page.goto(origin + PREFIX + '/handlers')
  const token = await page.getAttribute('tr[data-handler="award"] form input[name="token"]', 'value') ?? ''
  t.ok(token.length > 20, 'the page carries a pause token')
  const hostile = createServer((request, response) => {
    // A browser may ask any site for /favicon.ico: nothing there, and no 404 in the console.
    if (request.url !== '/') return response.writeHead(204).end()
    response.setHeader('content-type', 'text/html')
    response.end(`<!doctype html><link rel="icon" href="data:,"><form method="post" action="${origin}${PREFIX}/actions/pause"><input type="hidden" name="handler" value="award">` +
      `<input type="hidden" name="token" value="${token}"><button>win a prize</button></form>`)
  })
  await new Promise<void>((resolve) => hostile.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { hostile.close() })
  await page.goto(`http://localhost:${(hostile.address() as AddressInfo).port}/`)
  const [refused] = await Promise.all([page.waitForResponse(/actions\/pause/), page.click('text=win a prize')])
  t.equal(refused.status(), 403, 'the cross-origin POST is refused')
  t.same(webhooks.stats().flow.handlers, {}, 'nothing was paused')

  await page.goto(origin + READ_ONLY + '/handlers')
  t.equal(await page.textContent('tr[data-handler="award"] [data-field="paused"]'), 'running')
  t.equal(await page.locator('form[action$="/actions/pause"], form[action$="/actions/resume"]').count(), 0, 'no pause or resume button')
  const status = await page.evaluate(async ([url, token]) => {
    const answer = await fetch(url ?? '', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `handler=award&token=${token ?? ''}` })
    return answer.status
  }, [origin + READ_ONLY + '/actions/pause', token])
  t.equal(status, 403, 'a same-origin POST with a real token is refused read-only')
  t.same(webhooks.stats().flow.handlers, {}, 'still nothing paused')
  // The refusal is a plain-text page: the browser asks the app for /favicon.ico after it, and the app has none.
  t.same(problems.filter((problem) => !problem.includes('403') && !problem.endsWith('/favicon.ico)')), [], 'no dialog or script error')
})

t.test('sqlite: dead letters re-driven by filter with the buttons: the count first, then the confirmation, and only the filtered ones run', async (t) => {
  const { deliver, failing, handled, webhooks, origin } = await app(t, inboxOn(t, 'sqlite') as Inbox)
  const campaign: string[] = []
  webhooks.on('campaign.paused', async function pauseCampaign (event) { if (failing.on) throw new Error('not yet'); campaign.push(event.id) })
  for (const [id, type] of [['evt_f_award', 'action.completed'], ['evt_f_campaign', 'campaign.paused']] as const) {
    t.equal(await deliver(event(id, type)), 200)
    await until(async () => (await webhooks.inbox.outcome?.(id))?.state === 'dead', `${id} to be dead`)
  }
  failing.on = false
  const watched = await watchedPage(t)
  if (watched === undefined) return
  const { page, problems } = watched
  await page.goto(origin + PREFIX + '/dead')
  await page.fill('section.redrive-filtered input[name="type"]', 'action.completed')
  await Promise.all([page.waitForResponse(/actions\/redrive-filtered/), page.click('text=Count and re-drive')])
  t.equal(await page.textContent('[data-field="count"]'), '1', 'the count, before anything is queued')
  t.same(handled, [], 'nothing ran yet')
  const [answer] = await Promise.all([page.waitForResponse(/actions\/redrive-filtered/), page.click('text=Yes, re-drive them')])
  t.equal(answer.status(), 303)
  await page.waitForURL(/redriven=1/)
  t.match(await page.textContent('[role="status"]'), 'Re-drove 1 dead event(s).')
  await until(() => handled.includes('evt_f_award'), 'the filtered event\'s handler, in the app')
  t.equal((await webhooks.inbox.outcome?.('evt_f_campaign'))?.state, 'dead', 'the other type is still dead')
  t.same(campaign, [])
  t.same(problems, [], 'no dialog, script error or CSP violation')
})
