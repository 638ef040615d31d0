import { join } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { sign, type AnyEvent, type Delivery } from '../src/index.js'
import { sqliteInbox } from '../src/sqlite/inbox.js'
import { SCHEMA_VERSION } from '../src/sqlite/schema.js'
import { tempDir } from './inbox-contract/scenarios.js'
import { SECRET, delivery, event, receiver, sleep, until } from './inbox-contract/support.js'

/** A delivery of exactly these bytes, signed: key order, spacing and escapes as written. */
function rawDelivery (body: string | Buffer): Delivery {
  const rawBody = typeof body === 'string' ? Buffer.from(body) : body
  const { timestamp, signature } = sign({ secret: SECRET, rawBody })
  return { contentType: 'application/json', signature, timestamp, rawBody }
}

t.test('issue 20: data holding \\u0000, lone surrogates and a body near the limit is stored, handled and shown exactly as received', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const inbox = sqliteInbox({ path })
  const webhooks = receiver(inbox)
  t.teardown(() => webhooks.close())
  const seen = new Map<string, AnyEvent>()
  webhooks.on('action.completed', function record (evt) { seen.set(evt.id, evt) })
  // Written by hand: escapes, key order and spacing that JSON.stringify would not give back.
  const nul = '{ "type":"action.completed", "id":"evt_nul", "createdAt":"2026-05-10T09:12:00Z",\n  "data":{"s":"a\\u0000b","lone":"\\ud800x","pair":"\\ud83d\\ude00","raw":"é"} }'
  const big = JSON.stringify({ ...event('evt_big'), data: { blob: 'x'.repeat(1024 * 1024 - 200) } })
  t.ok(big.length > 1_000_000 && big.length <= 1024 * 1024, `${big.length} bytes, under the default bodyLimit`)
  for (const body of [nul, big]) t.equal((await webhooks.receive(rawDelivery(body))).code, 'ACCEPTED')
  await until(async () => (await inbox.outcome('evt_nul'))?.state === 'done' && (await inbox.outcome('evt_big'))?.state === 'done', 'both events to be handled')
  const data = seen.get('evt_nul')?.data as Record<string, string>
  t.equal(data.s, 'a\u0000b', 'the NUL reaches the handler')
  t.equal(data.lone, '\ud800x', 'the lone surrogate reaches the handler')
  t.equal(data.pair, '\ud83d\ude00')
  t.equal(data.raw, 'é')
  t.equal((seen.get('evt_big')?.data as { blob: string }).blob.length, 1024 * 1024 - 200)
  const shown = await inbox.outcome('evt_nul')
  t.equal(shown?.body, nul, 'outcome().body is the text received, byte for byte')
  t.same(shown?.event, JSON.parse(nul))
  t.equal((await inbox.outcome('evt_big'))?.body, big)
})

t.test('issue 20 item 3: an id with a lone surrogate is handled once and recorded done; one differing only in its surrogate is another event', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const inbox = sqliteInbox({ path, leaseMs: 200, pollIntervalMs: 20 })
  const webhooks = receiver(inbox)
  t.teardown(() => webhooks.close())
  const runs: string[] = []
  webhooks.on('action.completed', function record (evt) { runs.push(evt.id) })
  const first = '{"id":"evt_\\ud800","type":"action.completed","createdAt":"2026-05-10T09:12:00Z","data":{}}'
  const second = '{"id":"evt_\\ud801","type":"action.completed","createdAt":"2026-05-10T09:12:00Z","data":{}}'
  t.equal((await webhooks.receive(rawDelivery(first))).code, 'ACCEPTED')
  t.equal((await webhooks.receive(rawDelivery(second))).code, 'ACCEPTED', 'not taken for a duplicate of the first')
  t.equal((await webhooks.receive(rawDelivery(first))).code, 'DUPLICATE', 'the same id again is a duplicate')
  await until(async () => (await inbox.outcome('evt_\ud800'))?.state === 'done', 'the first event to be recorded done')
  await until(async () => (await inbox.outcome('evt_\ud801'))?.state === 'done', 'the second event to be recorded done')
  // Several leases and polls later: nothing ran again, nothing is left pending.
  await sleep(600)
  t.same(runs.sort(), ['evt_\ud800', 'evt_\ud801'], 'each handled once')
  const outcome = await inbox.outcome('evt_\ud800')
  t.equal(outcome?.id, 'evt_\ud800', 'the id reads back exactly')
  t.equal(outcome?.attempts, 1)
  t.same(await inbox.counts(), { pending: 0, done: 2, dead: 0 })
})

t.test('issue 20 item 16: a duplicate whose body differs is answered as a duplicate, warned about and counted', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const inbox = sqliteInbox({ path })
  const webhooks = receiver(inbox)
  t.teardown(() => webhooks.close())
  let runs = 0
  webhooks.on('action.completed', function record () { runs++ })
  const original = event('evt_twice')
  t.equal((await webhooks.receive(delivery(original))).code, 'ACCEPTED')
  t.equal((await webhooks.receive(delivery(original))).code, 'DUPLICATE')
  t.equal(webhooks.stats().deliveries.duplicateDiffers, 0, 'the same body again is a plain duplicate')
  const changed = await webhooks.receive(delivery({ ...original, data: { actionId: 'act_other', tokensDistributed: 51 } }))
  t.equal(changed.status, 200)
  t.equal(changed.code, 'DUPLICATE')
  t.equal(webhooks.stats().deliveries.duplicateDiffers, 1)
  t.ok(webhooks.log.some((entry) => entry.level === 'warn' && /body differs/.test(entry.msg ?? '')), 'a warning says so')
  await until(async () => (await inbox.outcome('evt_twice'))?.state === 'done', 'the event to be handled')
  t.equal(runs, 1, 'handled once')
  t.equal((await inbox.outcome('evt_twice'))?.body, JSON.stringify(original), 'the first body is the one kept')
})

t.test('a file of schema 1 is upgraded in place: its events still run and show, and new ones keep their bytes', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const old = new Database(path)
  old.pragma('journal_mode = WAL')
  // The table as sir-webhooks 0.1.0 created it, with one pending event.
  old.exec(`CREATE TABLE sir_webhook_events (
    id TEXT PRIMARY KEY, type TEXT NOT NULL, event TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'dead')), received_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL, lease_owner TEXT, lease_until INTEGER,
    succeeded TEXT NOT NULL DEFAULT '[]', last_error TEXT, finished_at INTEGER);
    PRAGMA user_version = 1`)
  old.prepare("INSERT INTO sir_webhook_events (id, type, event, state, received_at, next_attempt_at) VALUES ('evt_old', 'action.completed', ?, 'pending', 1, 1)")
    .run(JSON.stringify(event('evt_old')))
  old.close()
  const inbox = sqliteInbox({ path })
  const webhooks = receiver(inbox)
  t.teardown(() => webhooks.close())
  const runs: string[] = []
  webhooks.on('action.completed', function record (evt) { runs.push(evt.id) })
  t.equal((await webhooks.receive(delivery(event('evt_new')))).code, 'ACCEPTED')
  await until(async () => (await inbox.counts()).done === 2, 'both events to be handled')
  t.same(runs.sort(), ['evt_new', 'evt_old'])
  const oldOutcome = await inbox.outcome('evt_old')
  t.same(oldOutcome?.event, event('evt_old'))
  t.equal(oldOutcome?.body, undefined, 'no bytes were kept before the upgrade')
  t.equal((await webhooks.receive(delivery({ ...event('evt_old'), data: {} }))).code, 'DUPLICATE', 'its duplicates are still caught')
  const check = new Database(path, { readonly: true })
  t.teardown(() => { check.close() })
  t.equal(check.pragma('user_version', { simple: true }), SCHEMA_VERSION, 'upgraded to the current schema')
})

t.test('issue 21 item 7: a dead letter carries its body exactly as received', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const inbox = sqliteInbox({ path })
  const webhooks = receiver(inbox, { retry: { attempts: 1, minDelayMs: 5, maxDelayMs: 5 } })
  t.teardown(() => webhooks.close())
  webhooks.on('action.completed', function failing () { throw new Error('downstream refused') })
  const body = '{"data":{"b":2,"a":1},  "createdAt":"2026-05-10T09:12:00Z","type":"action.completed","id":"evt_dead_body"}'
  t.equal((await webhooks.receive(rawDelivery(body))).code, 'ACCEPTED')
  await until(async () => (await inbox.deadLetters()).length === 1, 'the dead letter')
  const [dead] = await inbox.deadLetters()
  t.equal(dead?.id, 'evt_dead_body')
  t.equal(dead?.body, body, 'in the order and spacing it was sent')
  t.same(dead?.event, JSON.parse(body))
})

t.test('a body handed over as a view into a larger buffer (as a Web adapter may) is stored as exactly its own bytes', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const inbox = sqliteInbox({ path })
  const webhooks = receiver(inbox)
  t.teardown(() => webhooks.close())
  webhooks.on('action.completed', function record () {})
  const body = JSON.stringify(event('evt_view'))
  const padded = new Uint8Array(Buffer.from(`xxx${body}yyy`))
  const view = new Uint8Array(padded.buffer, 3, body.length)
  const { timestamp, signature } = sign({ secret: SECRET, rawBody: view })
  t.equal((await webhooks.receive({ contentType: 'application/json', signature, timestamp, rawBody: view })).code, 'ACCEPTED')
  t.equal((await inbox.outcome('evt_view'))?.body, body)
})

t.test('issue 20 item 3: a running event whose id holds a lone surrogate keeps its lease: renewed, never claimed twice', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  // Two receivers on one file: had the renewal missed the id, the other would take the event over.
  // Three leases long, renewed every third of one: only a stall of the event loop
  // past two thirds of a lease (not to be expected even on a loaded machine) could take it over.
  const inboxes = [sqliteInbox({ path, leaseMs: 1_000, pollIntervalMs: 20 }), sqliteInbox({ path, leaseMs: 1_000, pollIntervalMs: 20 })]
  const runs: string[] = []
  const receivers = inboxes.map((inbox, index) => {
    const webhooks = receiver(inbox)
    t.teardown(() => webhooks.close())
    webhooks.on('action.completed', async function slow (evt) {
      runs.push(`${index}:${evt.id}`)
      await sleep(3_000)
    })
    return webhooks
  })
  const body = '{"id":"evt_\\udc00_slow","type":"action.completed","createdAt":"2026-05-10T09:12:00Z","data":{}}'
  t.equal((await receivers[0]!.receive(rawDelivery(body))).code, 'ACCEPTED')
  await until(async () => (await inboxes[0]!.outcome('evt_\udc00_slow'))?.state === 'done', 'the event to be done')
  t.equal(runs.length, 1, `ran once in all: ${runs.length}`)
  t.equal((await inboxes[0]!.outcome('evt_\udc00_slow'))?.attempts, 1)
})
