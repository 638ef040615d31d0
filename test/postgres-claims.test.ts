// Claim safety, asserted on handler runs (issue 20 item 24): a candidate id is
// only a hint, so an event finished or held by another instance must not run
// again when it comes back as one; under contention from two instances on one
// schema, each event runs exactly once.
import pg from 'pg'
import t, { type Test } from 'tap'
import type { WebhooksOptions } from '../src/index.js'
import { postgresInbox, type PostgresInbox, type PostgresInboxOptions } from '../src/postgres/inbox.js'
import { freshSchema, postgresForTests } from './helpers/postgres.js'
import { postgresTestTables, type PostgresReceiver } from './helpers/postgres-tables.js'
import { delivery, event, sleep, until } from './inbox-contract/support.js'

/** A promise to wait on and the function that lets it go. */
function gate (): { wait: Promise<void>, open: () => void } {
  let open = (): void => {}
  const wait = new Promise<void>((resolve) => { open = resolve })
  return { wait, open }
}

const postgres = await postgresForTests(t)
if (postgres.url === undefined) {
  t.test(`Postgres claim tests skipped: no PostgreSQL (${postgres.reason})`, async () => {})
} else {
  const url = postgres.url
  const admin = new pg.Pool({ connectionString: url, max: 4 })
  t.teardown(() => admin.end())
  const { receiverWith, userTable } = postgresTestTables(admin)
  const receiverOn = (t: Test, schema: string, inboxOptions: Partial<PostgresInboxOptions> = {}, options: Partial<WebhooksOptions<PostgresInbox>> = {}): PostgresReceiver =>
    receiverWith(t, postgresInbox({ connectionString: url, schema, ...inboxOptions }), options)
  const count = (runs: Map<string, number>, id: string): void => { runs.set(id, (runs.get(id) ?? 0) + 1) }

  t.test('an event another instance finished while it waited among this one\'s candidates is not run again here', async (t) => {
    const schema = freshSchema()
    await userTable(t, schema)
    const runs = new Map<string, number>()
    const blocker = gate()
    const busy = receiverOn(t, schema, { pollIntervalMs: 60_000 }, { concurrency: 1 })
    busy.on('action.completed', async function credit (evt) {
      count(runs, `busy:${evt.id}`)
      if (evt.id === 'evt_blocker') await blocker.wait
    })
    t.equal((await busy.receive(delivery(event('evt_blocker')))).status, 200)
    await until(() => runs.has('busy:evt_blocker'), 'the busy instance to run its blocker')
    // Its only worker is busy: this id waits in its list of candidates.
    t.equal((await busy.receive(delivery(event('evt_x')))).status, 200)
    const other = receiverOn(t, schema, { pollIntervalMs: 100 })
    other.on('action.completed', function credit (evt) { count(runs, `other:${evt.id}`) })
    await until(async () => (await other.inbox.outcome('evt_x'))?.state === 'done', 'the other instance to finish evt_x')
    blocker.open()
    await until(async () => (await busy.inbox.outcome('evt_blocker'))?.state === 'done', 'the blocker to finish')
    // The busy instance's worker now takes evt_x from its candidates, and must find it done.
    await sleep(300)
    t.same(Object.fromEntries(runs), { 'busy:evt_blocker': 1, 'other:evt_x': 1 }, 'evt_x ran once, on the other instance')
    // Its handler would be skipped anyway (its success is recorded): the claim itself must not start an attempt.
    t.match(await busy.inbox.outcome('evt_x'), { state: 'done', attempts: 1 }, 'no second attempt was started')
  })

  t.test('an event another instance holds is not run by an instance that finds it in a scan; it runs once', async (t) => {
    const schema = freshSchema()
    await userTable(t, schema)
    const runs = new Map<string, number>()
    const held = gate()
    const holder = receiverOn(t, schema, { pollIntervalMs: 60_000 })
    holder.on('action.completed', async function credit (evt) {
      count(runs, `holder:${evt.id}`)
      await held.wait
    })
    t.equal((await holder.receive(delivery(event('evt_held')))).status, 200)
    await until(() => runs.has('holder:evt_held'), 'the holder to start evt_held')
    const scanner = receiverOn(t, schema, { pollIntervalMs: 50 })
    scanner.on('action.completed', function credit (evt) { count(runs, `scanner:${evt.id}`) })
    // Many polls: each scan lists evt_held (pending, due) and each claim must skip it.
    await sleep(800)
    held.open()
    await until(async () => (await holder.inbox.outcome('evt_held'))?.state === 'done', 'evt_held to be done')
    await sleep(300)
    t.same(Object.fromEntries(runs), { 'holder:evt_held': 1 }, 'only the holder ran it, once')
    t.equal((await holder.inbox.outcome('evt_held'))?.attempts, 1, 'one attempt')
  })

  t.test('two instances on one schema, 300 events sent to both: each handler runs exactly once per event', async (t) => {
    const schema = freshSchema()
    const table = await userTable(t, schema)
    const runs = new Map<string, number>()
    const receivers = [0, 1].map((index) => {
      const webhooks = receiverOn(t, schema, { pollIntervalMs: 50 }, { concurrency: 4 })
      webhooks.on('action.completed', async function credit (evt, { transaction }) {
        count(runs, evt.id)
        await transaction.query(`INSERT INTO ${table} VALUES ($1, $2)`, [evt.id, `receiver ${index}`])
      })
      return webhooks
    })
    const ids = Array.from({ length: 300 }, (_, index) => `evt_contended_${index}`)
    // Each id to both instances, so both accept, scan for and race for every event.
    const results = await Promise.all(ids.flatMap((id) => receivers.map(async (webhooks) => await webhooks.receive(delivery(event(id))))))
    t.ok(results.every((result) => result.status === 200), 'every delivery was answered 200')
    t.equal(results.filter((result) => result.code === 'ACCEPTED').length, 300, 'each id accepted once, the other delivery a duplicate')
    await until(async () => (await receivers[0]!.inbox.counts()).done === 300, 'all 300 events to be done', 60_000)
    await sleep(300)
    t.same([...runs.entries()].filter(([, n]) => n !== 1), [], 'no handler ran twice')
    t.equal(runs.size, 300, 'every event ran')
    const { rows } = await admin.query<{ event_id: string, n: number }>(`SELECT event_id, count(*)::integer AS n FROM ${table} GROUP BY event_id HAVING count(*) <> 1`)
    t.same(rows, [], 'one row per event in the user table')
    const { rows: by } = await admin.query<{ handler: string, n: number }>(`SELECT handler, count(*)::integer AS n FROM ${table} GROUP BY handler ORDER BY handler`)
    t.equal(by.length, 2, `both instances ran events (${by.map(({ handler, n }) => `${handler}: ${n}`).join(', ')})`)
  })
}
