import t from 'tap'
import type { EventOutcome } from '../src/core/outcome.js'
import { BASIC, PREFIX, TERMINAL, XSS, fastifyApp } from './dashboard/support.js'

const RECORD: EventOutcome = {
  id: 'evt_attempts',
  type: 'action.completed',
  state: 'dead',
  receivedAt: new Date('2026-05-10T09:12:00Z'),
  attempts: 2,
  lastError: 'Error: partner down again'
}

/** The dashboard on a store alone whose record of the event is `outcome`. */
async function pageFor (t: Parameters<typeof fastifyApp>[0], outcome: EventOutcome): Promise<string> {
  const app = await fastifyApp(t, { inbox: { outcome: async (id) => id === outcome.id ? outcome : undefined } })
  const page = await app.inject({ method: 'GET', url: `${PREFIX}/events?q=${outcome.id}`, headers: { authorization: BASIC } })
  t.equal(page.statusCode, 200)
  return page.body
}

t.test('the event page lists each failed or deferred run with its error, as text', async (t) => {
  const body = await pageFor(t, {
    ...RECORD,
    attemptLog: [
      { handler: 'award', attempt: 1, at: new Date('2026-05-10T09:12:01Z'), outcome: 'deferred', error: 'rate' },
      { handler: 'award', attempt: 1, at: new Date('2026-05-10T09:12:02Z'), outcome: 'failed', error: `Error: partner down ${XSS} ${TERMINAL}` },
      { handler: 'award', attempt: 2, at: new Date('2026-05-10T09:12:09Z'), outcome: 'failed', error: 'Error: partner down again' }
    ]
  })
  const rows = [...body.matchAll(/<tr data-attempt="(\d)">([\s\S]*?)<\/tr>/g)].map((match) => match[2]?.replace(/<[^>]+>/g, '|').replace(/\|+/g, '|').replace(/\s/g, ''))
  t.same(rows, [
    '|2026-05-10T09:12:01Z|award|1|deferred|rate|',
    '|2026-05-10T09:12:02Z|award|1|failed|Error:partnerdown&lt;imgsrc=xonerror=alert(1)&gt;\\u001b[2J|',
    '|2026-05-10T09:12:09Z|award|2|failed|Error:partnerdownagain|'
  ])
  t.notMatch(body, '<img', 'the error made no element')
  t.notMatch(body, 'not kept by this store')
})

t.test('a store that keeps no attempt log says so instead of an empty table', async (t) => {
  const body = await pageFor(t, RECORD)
  t.match(body, 'error is not kept by this store: the last error is shown above.')
  t.notMatch(body, 'class="attempts"')
  const none = await pageFor(t, { ...RECORD, state: 'done', attemptLog: [] })
  t.match(none, 'No failed or deferred run.')
})

t.test('the event page shows an ordered event\'s key, as text, and a stale skip', async (t) => {
  const body = await pageFor(t, { ...RECORD, state: 'done', orderingKey: `action:${XSS}`, skipped: 'stale' })
  t.match(body, /<dd data-field="orderingKey"><code>action:&lt;img src=x onerror=alert\(1\)&gt;<\/code><\/dd>/)
  t.match(body, /<dd data-field="skipped">skipped: stale. Not run/)
  t.notMatch(body, '<img', 'the key made no element')
  const plain = await pageFor(t, RECORD)
  t.notMatch(plain, 'ordering key', 'no ordering row for an event without a key')
})
