import t from 'tap'
import type { EventOutcome } from '../../src/core/outcome.js'
import { describeOutcome } from '../../src/cli/inbox-format.js'
import { storeFailure } from '../../src/cli/store-failure.js'

const record: EventOutcome = {
  id: 'evt_1',
  type: 'action.completed',
  state: 'dead',
  receivedAt: new Date('2026-11-30T06:21:26.000Z'),
  attempts: 5,
  lastError: 'creditPartner: Error: 502',
  finishedAt: new Date('2026-11-30T06:22:00.000Z'),
  // jsonb order: what Postgres gives back
  event: { createdAt: '2026-11-30T06:21:25Z', data: { b: 1, a: 2 }, id: 'evt_1', type: 'action.completed' } as unknown as EventOutcome['event']
}

t.test('inbox show prints the body as received, key order and spacing kept, under its label', async (t) => {
  const body = '{"type":"action.completed","id":"evt_1",\n  "data":{"b":1,"a":2},"createdAt":"2026-11-30T06:21:25Z"}'
  const text = describeOutcome({ ...record, body })
  t.equal(text, [
    'id          evt_1',
    'type        action.completed',
    'state       dead',
    'received    2026-11-30T06:21:26.000Z',
    'attempts    5',
    'last error  creditPartner: Error: 502',
    'finished    2026-11-30T06:22:00.000Z',
    'body (as received):',
    '  {"type":"action.completed","id":"evt_1",',
    '    "data":{"b":1,"a":2},"createdAt":"2026-11-30T06:21:25Z"}',
    ''
  ].join('\n'))
})

t.test('a body\'s control characters are shown, not obeyed; its newlines and tabs stay layout', async (t) => {
  const body = '{"type":"x\u009b2J\u007f",\t"id":"evt_1"}\r\n\u001b[2J'
  const text = describeOutcome({ ...record, body })
  t.match(text, 'body (as received):\n  {"type":"x\\x9b2J\\x7f",\t"id":"evt_1"}\\x0d\n  \\x1b[2J\n')
  // eslint-disable-next-line no-control-regex
  t.notMatch(text, /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/)
})

t.test('without a body, the event as stored', async (t) => {
  const text = describeOutcome(record)
  t.match(text, 'event (as stored):\n  {\n    "createdAt": "2026-11-30T06:21:25Z",\n')
  t.notMatch(text, 'body')
})

t.test('a missing schema is named, the default one too', async (t) => {
  const missing = Object.assign(new Error('relation "sir_webhooks.events" does not exist'), { code: '42P01' })
  t.match(storeFailure(missing, 'postgres://app:pw-long@db/app', {}).message,
    /^no sir-webhooks inbox tables in the default schema "sir_webhooks" of this database: give the schema the inbox was created with \(its `schema` option\) as --schema NAME, or create the tables with "sir-webhooks migrate --print"/)
  t.match(storeFailure(missing, undefined, { schema: 'nope' }).message, 'in the schema "nope" (--schema)')
})

t.test('a driver message never carries the store\'s password or sqlite path', async (t) => {
  const spec = 'postgres://app:p%40ss-word@db/app'
  t.equal(storeFailure(new Error('auth failed for p@ss-word and p%40ss-word at postgres://app:p%40ss-word@db/app'), spec, {}).message, 'auth failed for *** and *** at ***')
  t.equal(storeFailure(new Error('cannot open "/srv/my secret/inbox.db"'), 'sqlite:/srv/my%20secret/inbox.db', {}).message, 'cannot open "***"')
  t.equal(storeFailure(new Error('a\u001b[2J'), undefined, {}).message, 'a\\x1b[2J', 'control characters shown')
})
