// The event record's stale flag and finished handlers, the Events page's handler
// filter, and the Handlers page's links to it (issue 24), rendered as text.
import t from 'tap'
import type { EventQuery } from '../src/core/inbox.js'
import type { EventOutcome } from '../src/core/outcome.js'
import { WebhookOptionsError } from '../src/core/errors.js'
import { MemoryInbox } from '../src/core/memory-inbox.js'
import { BASIC, PREFIX, TERMINAL, XSS, fastifyApp, sqliteReceiver, withHandler } from './dashboard/support.js'
import { delivery, event, until } from './inbox-contract/support.js'

const RECORD: EventOutcome = {
  id: 'evt_record',
  type: 'action.completed',
  state: 'dead',
  receivedAt: new Date('2026-05-10T09:12:00Z'),
  attempts: 2,
  lastError: 'Error: partner down again',
  orderingKey: 'action:act_1'
}

async function get (t: Parameters<typeof fastifyApp>[0], inbox: Parameters<typeof fastifyApp>[1]['inbox'], url: string): Promise<string> {
  const app = await fastifyApp(t, { inbox })
  const page = await app.inject({ method: 'GET', url: PREFIX + url, headers: { authorization: BASIC } })
  t.equal(page.statusCode, 200, page.body)
  return page.body
}

const recordPage = async (t: Parameters<typeof fastifyApp>[0], outcome: EventOutcome): Promise<string> =>
  await get(t, { outcome: async (id) => id === outcome.id ? outcome : undefined }, `/events?q=${outcome.id}`)

t.test('the record says whether the event ran stale and which handlers finished, as text', async (t) => {
  const dead = await recordPage(t, { ...RECORD, stale: true, handled: ['notify', `audit${XSS}${TERMINAL}`] })
  t.match(dead, /<dd data-field="stale">yes: a newer event of its key was handled first; its handlers were told ordering.stale<\/dd>/)
  t.match(dead, /<dd data-field="handled">notify, audit&lt;img src=x onerror=alert\(1\)&gt;\\u001b\[2J<\/dd>/)
  t.notMatch(dead, '<img', 'a handler key made no element')
  t.notMatch(dead, '\u001b', 'nor a terminal escape')
  t.match(await recordPage(t, { ...RECORD, state: 'pending', stale: false, handled: [] }), /<dd data-field="stale">no<\/dd>[\s\S]*<dd data-field="handled">none yet<\/dd>/)
  t.match(await recordPage(t, { ...RECORD, state: 'done' }), /<dd data-field="handled">every handler<\/dd>/, 'a done event: all finished')
  const skipped = await recordPage(t, { ...RECORD, state: 'done', stale: true, skipped: 'stale' })
  t.match(skipped, /<dd data-field="skipped">skipped: stale\. Not run/)
  t.match(skipped, /<dd data-field="handled">none: skipped as stale<\/dd>/)
  const unordered = await recordPage(t, { ...RECORD, orderingKey: undefined })
  t.notMatch(unordered, 'data-field="stale"', 'no stale row for an event without a key')
  t.match(unordered, /<dd data-field="handled">unknown: this store does not record it<\/dd>/)
})

t.test('the Events page filters by handler beside type, state and time; a store that refuses it is said to, not a 503', async (t) => {
  const asked: EventQuery[] = []
  const listing = await get(t, { outcome: async () => undefined, events: async (query) => { asked.push(query ?? {}); return [{ ...RECORD, id: 'evt_award_failed' }] } },
    `/events?handler=${encodeURIComponent(` award${XSS} `)}&state=dead`)
  t.match(asked, [{ state: 'dead', handler: `award${XSS}` }], 'trimmed and passed to the store')
  t.match(listing, /<input name="handler" value="award&lt;img src=x onerror=alert\(1\)&gt;"/, 'the field keeps the filter, escaped')
  t.match(listing, '>evt_award_failed</a>')
  t.notMatch(listing, '<img')

  const refusing = await get(t, {
    outcome: async () => undefined,
    events: async (query) => {
      if (query?.handler !== undefined) throw new WebhookOptionsError('events(query): this store keeps no attempt log, so it cannot filter by "handler"')
      return [RECORD]
    }
  }, '/events?handler=award')
  t.match(refusing, 'This store does not filter by handler')
  t.notMatch(refusing, 'class="events"', 'no table of unfiltered events passed off as filtered')
  t.match(await get(t, { outcome: async () => undefined, events: async () => [RECORD] }, '/events'), '>evt_record</a>', 'without the filter the page lists as before')

  const app = await fastifyApp(t, { inbox: { outcome: async () => undefined, events: async () => { throw new Error('the store is down') } } })
  const down = await app.inject({ method: 'GET', url: PREFIX + '/events?handler=award', headers: { authorization: BASIC } })
  t.equal(down.statusCode, 503, 'any other failure is still the store not answering')
})

t.test('the Handlers page links each handler to the Events page filtered by it', async (t) => {
  const { webhooks, failing } = sqliteReceiver(t)
  failing.on = false
  t.equal((await webhooks.receive(delivery(event('evt_links')))).code, 'ACCEPTED')
  await until(async () => (await webhooks.inbox.outcome?.('evt_links'))?.state === 'done', 'the event to run')
  const app = await fastifyApp(t, webhooks)
  const page = await app.inject({ method: 'GET', url: PREFIX + '/handlers', headers: { authorization: BASIC } })
  t.match(page.body, `<a href="${PREFIX}/events?handler=award"`)
  const inMemory = withHandler(t, new MemoryInbox())
  inMemory.failing.on = false
  t.equal((await inMemory.webhooks.receive(delivery(event('evt_memory')))).code, 'ACCEPTED')
  await until(() => inMemory.handled.length === 1, 'the event to run')
  const memory = await (await fastifyApp(t, inMemory.webhooks)).inject({ method: 'GET', url: PREFIX + '/handlers', headers: { authorization: BASIC } })
  t.match(memory.body, /<tr data-handler="award">\s*<td>award<\/td>/, 'the handler is listed')
  t.notMatch(memory.body, '/events?handler=', 'without a link: the memory inbox cannot list events')
})
