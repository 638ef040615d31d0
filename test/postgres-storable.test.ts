// Every event that passes verification can be stored by the Postgres inbox,
// exactly as received, and one that the database refuses for reasons of its own
// costs its batch-mates nothing (issue 20 items 1, 4 and 16; issue 21 item 7).
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import t, { type Test } from 'tap'
import { sign, type Delivery, type WebhooksOptions } from '../src/index.js'
import { postgresInbox, type PostgresInbox, type PostgresInboxOptions } from '../src/postgres/inbox.js'
import { freshSchema, postgresForTests } from './helpers/postgres.js'
import { postgresTestTables, type PostgresReceiver } from './helpers/postgres-tables.js'
import { SECRET, delivery, event, until } from './inbox-contract/support.js'

/** A delivery of exactly these bytes: key order, spacing and escapes as written. */
function rawDelivery (text: string): Delivery {
  const rawBody = Buffer.from(text, 'utf8')
  const { timestamp, signature } = sign({ secret: SECRET, rawBody })
  return { contentType: 'application/json', signature, timestamp, rawBody }
}

const postgres = await postgresForTests(t)
if (postgres.url === undefined) {
  t.test(`Postgres storable-event tests skipped: no PostgreSQL (${postgres.reason})`, async () => {})
} else {
  const url = postgres.url
  const admin = new pg.Pool({ connectionString: url, max: 4 })
  t.teardown(() => admin.end())
  const { receiverWith } = postgresTestTables(admin)
  const receiverOn = (t: Test, schema: string, inboxOptions: Partial<PostgresInboxOptions> = {}, options: Partial<WebhooksOptions<PostgresInbox>> = {}): PostgresReceiver => {
    t.teardown(() => admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
    return receiverWith(t, postgresInbox({ connectionString: url, schema, ...inboxOptions }), options)
  }

  /**
   * `odd` with its `body` straight to the inbox (a receiver may refuse it sooner),
   * at once with the `plain` deliveries through the receiver, so that they share
   * its batch: the inbox's answer for `odd`, then each plain delivery's code.
   */
  const acceptAmong = async (webhooks: PostgresReceiver, odd: ReturnType<typeof event>, body: Buffer, plain: Array<ReturnType<typeof event>>): Promise<unknown[]> => await Promise.all([
    webhooks.inbox.accept(odd as never, Date.now(), undefined, undefined, body),
    ...plain.map(async (mate) => (await webhooks.receive(delivery(mate))).code)
  ])

  t.test('events whose data holds \\u0000, lone surrogates or 600 KB are accepted with the 29 sent in the same batch, handled with their data intact', async (t) => {
    const schema = freshSchema()
    const webhooks = receiverOn(t, schema)
    const seen = new Map<string, unknown>()
    webhooks.on('action.completed', function record (evt) { seen.set(evt.id, evt.data) })
    const odd: Array<Record<string, unknown>> = [
      { ...event('evt_nul'), data: { s: 'a\u0000b' } },
      { ...event('evt_high'), data: { s: 'x\ud800y' } },
      { ...event('evt_low'), data: { s: '\udc00' } },
      { ...event('evt_big'), data: { s: 'z'.repeat(600_000) } }
    ]
    const plain = Array.from({ length: 26 }, (_, index) => event(`evt_plain_${index}`))
    // All at once: they share group commits with the odd ones.
    const results = await Promise.all([...plain.slice(0, 13), ...odd, ...plain.slice(13)].map(async (body) => await webhooks.receive(delivery(body))))
    t.same(results.filter((result) => result.status !== 200).map((result) => result.code), [], 'every delivery got 200')
    await until(() => seen.size === 30, 'every event to be handled')
    for (const body of odd) t.same(seen.get(String(body.id)), body.data, `${String(body.id)}'s handler saw its data as sent`)
    t.equal(webhooks.stats().deliveries.accepted, 30)
  })

  t.test('outcome() and dead letters give the body exactly as received, key order and spacing kept', async (t) => {
    const schema = freshSchema()
    const webhooks = receiverOn(t, schema, {}, { retry: { attempts: 1, minDelayMs: 5, maxDelayMs: 5 } })
    webhooks.on('action.completed', function fails () { throw new Error('no') })
    const text = '{ "type":"action.completed",  "id":"evt_ordered", "data":{"z":1,"a":[ 2 ,1],"s":"\\u0000\\ud800"},"createdAt":"2026-05-10T09:12:00Z" }\n'
    t.equal((await webhooks.receive(rawDelivery(text))).status, 200)
    await until(async () => (await webhooks.inbox.outcome('evt_ordered'))?.state === 'dead', 'the event to be dead')
    const outcome = await webhooks.inbox.outcome('evt_ordered')
    t.equal(outcome?.body, text, 'outcome().body is the text received, byte for byte')
    t.same(outcome?.event?.data, { z: 1, a: [2, 1], s: '\u0000\ud800' }, 'and the event is parsed from it')
    const [dead] = await webhooks.inbox.deadLetters()
    t.equal(dead?.body, text, 'so is a dead letter\'s')
  })

  t.test('ids holding \\u0000 or a lone surrogate are stored apart, handled, deduplicated and found by outcome()', async (t) => {
    const schema = freshSchema()
    const webhooks = receiverOn(t, schema)
    const handled: string[] = []
    webhooks.on('action.completed', function record (evt) { handled.push(evt.id) })
    const ids = ['evt_\u0000', 'evt_\ud800', 'evt_\udc00', 'evt_\ufffd', '"evt_plain"']
    const first = await Promise.all(ids.map(async (id) => await webhooks.receive(delivery(event(id)))))
    t.same(first.map((result) => result.code), ids.map(() => 'ACCEPTED'), 'each is a new event, none taken for another')
    await until(() => handled.length === ids.length, 'every event to be handled')
    t.same([...handled].sort(), [...ids].sort(), 'handlers saw each id exactly')
    const again = await Promise.all(ids.map(async (id) => await webhooks.receive(delivery(event(id)))))
    t.same(again.map((result) => result.code), ids.map(() => 'DUPLICATE'), 'each id comes back as a duplicate')
    for (const id of ids) {
      const outcome = await webhooks.inbox.outcome(id)
      t.equal(outcome?.id, id, `outcome(${JSON.stringify(id)}) finds it under its own id`)
      t.equal(outcome?.state, 'done')
    }
  })

  t.test('a body holding a raw NUL (no receiver passes one, but the inbox may be called directly) gets 503 alone; its batch-mates go in with it', async (t) => {
    const schema = freshSchema()
    const webhooks = receiverOn(t, schema)
    const handled: string[] = []
    webhooks.on('action.completed', function record (evt) { handled.push(evt.id) })
    t.equal((await webhooks.receive(delivery(event('evt_first')))).code, 'ACCEPTED')
    await until(() => handled.length === 1, 'the first event to be handled')
    const nulEvent = event('evt_raw_nul')
    const nulBody = Buffer.from(JSON.stringify(nulEvent).replace('"data":', '"data":\u0000'))
    t.ok(nulBody.includes(0), 'the body holds a NUL byte')
    const plain = Array.from({ length: 12 }, (_, index) => event(`evt_nul_mate_${index}`))
    const [nul, ...mates] = await acceptAmong(webhooks, nulEvent, nulBody, plain)
    t.equal(nul, 'unavailable', 'the body Postgres text cannot hold is refused')
    t.same(mates, plain.map(() => 'ACCEPTED'), 'every batch-mate is accepted')
    await until(() => handled.length === 13, 'the batch-mates to be handled')
    t.equal(webhooks.inbox.health().status, 'ok')
  })

  t.test('ordering keys with quotes, backslashes, a NUL and a lone surrogate reach the handler as the key function gave them', async (t) => {
    const schema = freshSchema()
    const keys = ["it's", 'back\\slash', 'dq"x', 'nul\u0000key', 'lone\ud800', 'e\\\'mix']
    const webhooks = receiverOn(t, schema, {}, { ordering: { key: (evt) => keys[Number(evt.id.split('_').pop())] } })
    const seen = new Map<string, string | undefined>()
    webhooks.on('action.completed', function record (evt, { ordering }) { seen.set(evt.id, ordering?.key) })
    const results = await Promise.all(keys.map(async (_, index) => await webhooks.receive(delivery(event(`evt_key_${index}`)))))
    t.same(results.map((result) => result.code), keys.map(() => 'ACCEPTED'), 'each is accepted, in one batch or a few')
    await until(() => seen.size === keys.length, 'every event to be handled')
    t.same(keys.map((_, index) => seen.get(`evt_key_${index}`)), keys, 'each handler saw its own key')
  })

  t.test('a row the database refuses (a 10 KB id, too large for the index) gets 503 alone: its batch-mates are recorded and answered 2xx', async (t) => {
    const schema = freshSchema()
    const webhooks = receiverOn(t, schema)
    const handled: string[] = []
    webhooks.on('action.completed', function record (evt) { handled.push(evt.id) })
    const hugeId = `evt_${randomBytes(7_500).toString('base64')}`
    const hugeEvent = event(hugeId)
    const hugeBody = Buffer.from(JSON.stringify(hugeEvent))
    const plain = Array.from({ length: 20 }, (_, index) => event(`evt_mate_${index}`))
    // The receiver starts its inbox with its first delivery.
    t.equal((await webhooks.receive(delivery(event('evt_first')))).code, 'ACCEPTED')
    await until(() => handled.length === 1, 'the first event to be handled')
    // Straight to the inbox: a receiver may bound ids before they reach it, but a
    // row can fail for other reasons, and the inbox must cope with any of them.
    const [huge, ...mates] = await acceptAmong(webhooks, hugeEvent, hugeBody, plain)
    t.equal(huge, 'unavailable', 'the event whose row cannot be stored is refused')
    t.same(mates, plain.map(() => 'ACCEPTED'), 'every batch-mate is accepted')
    await until(() => handled.length === 21, 'the batch-mates to be handled')
    const warning = webhooks.log.find((entry) => entry.msg?.includes('could not record this event') === true)
    t.ok(warning, 'the refused row is logged')
    t.match(warning?.fields, { event: { type: 'action.completed' } })
    // A handler runs before its batch commits: the last batch's rows turn done a moment after its handler.
    await until(async () => (await webhooks.inbox.counts()).done >= 21, 'the last batch to commit')
    t.equal((await webhooks.inbox.counts()).done, 21, 'the table holds the 20 batch-mates and the first event')
    t.match(warning?.fields, { err: { code: '54000' } }, 'with the database\'s reason')
    t.equal(webhooks.inbox.health().status, 'ok', 'one refused row does not make the store degraded')
  })

  t.test('a handler error whose message holds \\u0000 is recorded as the last error, and the event goes dead after its own attempts', async (t) => {
    const schema = freshSchema()
    const webhooks = receiverOn(t, schema, {}, { retry: { attempts: 2, minDelayMs: 5, maxDelayMs: 10 } })
    const errors: string[] = []
    webhooks.onDeadLetter((entry) => { errors.push(entry.error instanceof Error ? entry.error.message : String(entry.error)) })
    let runs = 0
    webhooks.on('action.completed', function nul () {
      runs++
      throw new Error('bad\u0000news')
    })
    t.equal((await webhooks.receive(delivery(event('evt_nul_error')))).status, 200)
    await until(async () => (await webhooks.inbox.outcome('evt_nul_error'))?.state === 'dead', 'the event to be dead')
    const outcome = await webhooks.inbox.outcome('evt_nul_error')
    t.equal(outcome?.lastError, 'nul: Error: bad\\u0000news', 'the handler\'s error is the last error, its NUL written out')
    t.equal(outcome?.attempts, 2)
    t.equal(runs, 2, 'the handler ran once per attempt')
    t.same(errors, ['bad\u0000news'], 'the dead letter carries the handler\'s own error')
    t.same(outcome?.attemptLog?.map((run) => run.error), ['Error: bad\\u0000news', 'Error: bad\\u0000news'], 'the attempt log (jsonb) holds each failure, its NUL written out')
  })

  t.test('a duplicate whose body differs from the one recorded is answered as a duplicate and counted; an identical one is not counted', async (t) => {
    const schema = freshSchema()
    const webhooks = receiverOn(t, schema)
    webhooks.on('action.completed', function noop () {})
    const original = event('evt_dup')
    t.equal((await webhooks.receive(delivery(original))).code, 'ACCEPTED')
    t.equal((await webhooks.receive(delivery(original))).code, 'DUPLICATE')
    t.equal(webhooks.stats().deliveries.duplicateDiffers, 0, 'the same body again is a plain duplicate')
    t.equal((await webhooks.receive(delivery({ ...original, data: { tokensDistributed: 51 } }))).code, 'DUPLICATE')
    t.equal(webhooks.stats().deliveries.duplicateDiffers, 1, 'a different body under the same id is counted')
    // Two bodies for one new id in one batch: one is recorded, the other differs from it.
    const [a, b] = await Promise.all([
      webhooks.receive(delivery(event('evt_twice'))),
      webhooks.receive(delivery({ ...event('evt_twice'), data: { other: true } }))
    ])
    t.same([a.code, b.code].sort(), ['ACCEPTED', 'DUPLICATE'])
    t.equal(webhooks.stats().deliveries.duplicateDiffers, 2, 'within one batch too')
    t.ok(webhooks.log.some((entry) => entry.level === 'warn' && entry.msg?.includes('body differs') === true), 'and warned about')
  })

  t.test('a row whose body no longer parses (edited in the database) is dead-lettered, not retried forever', async (t) => {
    const schema = freshSchema()
    const webhooks = receiverOn(t, schema, { pollIntervalMs: 100 })
    const handled: string[] = []
    const dead: string[] = []
    webhooks.on('action.completed', function record (evt) { handled.push(evt.id) })
    webhooks.onDeadLetter((entry) => { dead.push(`${entry.event.id} ${entry.error instanceof Error ? entry.error.message : ''}`) })
    t.equal((await webhooks.receive(delivery(event('evt_fine')))).status, 200)
    await until(() => handled.length === 1, 'the first event to be handled')
    await admin.query(`INSERT INTO ${schema}.events (id, type, body, received_at, next_attempt_at) VALUES ('evt_edited', 'action.completed', '{"id": 1', $1, $1)`, [Date.now()])
    await until(async () => (await webhooks.inbox.outcome('evt_edited'))?.state === 'dead', 'the edited event to be dead')
    t.same(dead, ['evt_edited the stored body is no longer a valid event'], 'reported as a dead letter with the reason')
    t.same(handled, ['evt_fine'], 'no handler ran for it')
    t.equal((await webhooks.inbox.outcome('evt_edited'))?.body, '{"id": 1', 'its body is still shown as stored')
  })
}
