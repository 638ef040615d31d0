// When the Postgres inbox's workers scan the table for due ids, and what they
// do with a scan's answer, where several workers or instances meet: ids put back
// by a batch out of time, a request that comes while a scan runs, and rows other
// instances hold. Each case once left an accepted event pending, workers idle,
// until the next poll (a minute away here) or the other instance let go.
import pg from 'pg'
import t, { type Test } from 'tap'
import { postgresInbox } from '../src/postgres/inbox.js'
import { freshSchema, postgresForTests } from './helpers/postgres.js'
import { type PostgresReceiver, postgresTestTables } from './helpers/postgres-tables.js'
import { delivery, event, sleep, until } from './inbox-contract/support.js'

const postgres = await postgresForTests(t)
if (postgres.url === undefined) {
  t.test(`Postgres scan tests skipped: no PostgreSQL (${postgres.reason})`, async () => {})
} else {
  const url = postgres.url
  const admin = new pg.Pool({ connectionString: url, max: 4 })
  t.teardown(() => admin.end())
  const { receiverWith } = postgresTestTables(admin)

  /**
   * 240 events due a minute ago, as another instance accepted them, held by its
   * open claims (row locks in one transaction on `other`, which the test ends).
   */
  const heldByAnotherInstance = async (schema: string): Promise<{ other: pg.PoolClient, otherIds: string[] }> => {
    const old = Date.now() - 60_000
    const otherIds = Array.from({ length: 240 }, (_, index) => `evt_theirs_${String(index).padStart(3, '0')}`)
    await admin.query(`INSERT INTO ${schema}.events (id, type, body, received_at, next_attempt_at)
      SELECT id, 'action.completed', json_build_object('id', id, 'type', 'action.completed', 'createdAt', '2026-05-10T09:12:00Z', 'data', json_build_object())::text, $2::bigint + ord, $2::bigint + ord FROM unnest($1::text[]) WITH ORDINALITY AS u (id, ord)`, [otherIds, old])
    const other = await admin.connect()
    await other.query('BEGIN')
    await other.query(`SELECT id FROM ${schema}.events WHERE id = ANY ($1) FOR NO KEY UPDATE`, [otherIds])
    return { other, otherIds }
  }

  /**
   * Until the inbox has made its tables and is ready: the test then writes to
   * them as another instance would. A fixed sleep was once too short under CI load.
   */
  const tablesMade = async (webhooks: PostgresReceiver, schema: string): Promise<void> => {
    // Health says ok before the start too, so the table is looked for first.
    await until(async () => {
      const { rows } = await admin.query<{ events: string | null }>('SELECT to_regclass($1)::text AS events', [`${schema}.events`])
      return rows[0]?.events != null && webhooks.inbox.health().status === 'ok'
    }, 'the inbox to make its tables and be ready')
  }

  /** A fresh schema and a pool of the inbox's own (two workers, the accepts' three, the spare), both gone when the test ends. */
  const schemaAndPool = (t: Test): { schema: string, pool: pg.Pool } => {
    const schema = freshSchema()
    t.teardown(() => admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
    const pool = new pg.Pool({ connectionString: url, max: 2 + 3 + 1 })
    t.teardown(() => pool.end())
    return { schema, pool }
  }

  t.test('put-back ids survive a scan that started while they ran', async (t) => {
    const { schema, pool } = schemaAndPool(t)

    // Armed: the next scan's answer is held until a batch's COMMIT has come back.
    let armed = false
    let scanIssued = false
    let committed = false
    let scanRunningParam: string[] = []
    let releaseScan: (() => void) | undefined
    const scanHeld = new Promise<void>((resolve) => { releaseScan = resolve })
    pool.on('connect', (client) => {
      const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>
      Object.assign(client, {
        query: (...args: unknown[]) => {
          const text = args[0]
          if (armed && typeof text === 'string' && /SELECT id FROM \S+\.events\s+WHERE state = 'pending'/.test(text)) {
            armed = false
            scanIssued = true
            scanRunningParam = ((args[1] as unknown[])[2] ?? []) as string[]
            const answer = query(...args)
            return answer.then(async (result) => { await scanHeld; return result })
          }
          const answer = query(...args)
          if (scanIssued && typeof text === 'string' && /SET state = 'done'[\s\S]*COMMIT\s*$/.test(text)) {
            // The slow batch committed: its put-back and the re-take run in the same turn.
            void answer.finally(() => { committed = true })
          }
          if (committed && typeof text === 'string' && /FOR NO KEY UPDATE/.test(text)) {
            // The worker that put ids back has taken some of them again: the held scan lands now.
            releaseScan?.()
          }
          return answer
        }
      })
    })

    const webhooks = receiverWith(t, postgresInbox({ pool, schema, pollIntervalMs: 60_000, groupCommitMs: 20 }), { concurrency: 2 })
    const handled: string[] = []
    let first = true
    let releaseSlow: (() => void) | undefined
    const slow = new Promise<void>((resolve) => { releaseSlow = resolve })
    webhooks.on('action.completed', async function h (evt) {
      if (first) {
        first = false
        // Past the 50 ms batch budget: the rest of this batch is put back.
        await slow
      }
      handled.push(evt.id)
    })
    await sleep(300) // the start-up scan is over

    const ids = Array.from({ length: 8 }, (_, index) => `evt_putback_${index}`)
    const results = await Promise.all(ids.map(async (id) => await webhooks.receive(delivery(event(id)))))
    t.ok(results.every((result) => result.code === 'ACCEPTED'), 'accepted')
    // Worker A holds 4 (the first one blocked), worker B ran the other 4 and went idle.
    await until(() => handled.length === 4, 'the other worker to run the rest', 10_000)
    await sleep(100)

    // A redrive's wake-up (empty payload): a scan, taken by the idle slot.
    armed = true
    await admin.query(`SELECT pg_notify('${schema}_events', '')`)
    await until(() => scanIssued, 'the scan to be issued', 10_000)
    t.comment(`the scan left out the ids running here: ${JSON.stringify(scanRunningParam)}`)
    await sleep(80)
    releaseSlow?.()

    // Every worker goes idle; the poll is a minute away.
    const deadline = Date.now() + 3_000
    while (handled.length < ids.length && Date.now() < deadline) await sleep(50)
    const { rows } = await admin.query<{ id: string }>(`SELECT id FROM ${schema}.events WHERE state = 'pending' ORDER BY id`)
    t.same(rows.map(({ id }) => id), [], 'no accepted event is left pending while the workers are idle')
    t.equal(handled.length, ids.length, 'every event handled within 3 s')
    await webhooks.close()
  })

  t.test('a wake-up that arrives during a scan another worker joins is acted on', async (t) => {
    const { schema, pool } = schemaAndPool(t)

    let armed = false
    let scanIssued = false
    let scansAfter = 0
    let releaseScan: (() => void) | undefined
    const scanHeld = new Promise<void>((resolve) => { releaseScan = resolve })
    let slowCommitted = false
    pool.on('connect', (client) => {
      const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>
      Object.assign(client, {
        query: (...args: unknown[]) => {
          const text = args[0]
          const isScan = typeof text === 'string' && /SELECT id FROM \S+\.events\s+WHERE state = 'pending'/.test(text)
          if (isScan && scanIssued) scansAfter++
          if (isScan && armed) {
            armed = false
            scanIssued = true
            const answer = query(...args)
            return answer.then(async (result) => { await scanHeld; return result })
          }
          const answer = query(...args)
          if (scanIssued && typeof text === 'string' && /SET state = 'done'[\s\S]*COMMIT\s*$/.test(text)) {
            void answer.finally(() => { slowCommitted = true })
          }
          return answer
        }
      })
    })

    const webhooks = receiverWith(t, postgresInbox({ pool, schema, pollIntervalMs: 60_000 }), { concurrency: 2 })
    const handled: string[] = []
    let releaseSlow: (() => void) | undefined
    const slow = new Promise<void>((resolve) => { releaseSlow = resolve })
    webhooks.on('action.completed', async function h (evt) {
      if (evt.id === 'evt_slow') await slow
      handled.push(evt.id)
    })
    await sleep(300) // the start-up scan is over

    // Worker B runs a slow event.
    t.equal((await webhooks.receive(delivery(event('evt_slow')))).code, 'ACCEPTED')
    await sleep(100)
    // Worker A scans (a redrive's wake-up); the scan's answer is held.
    armed = true
    await admin.query(`SELECT pg_notify('${schema}_events', '')`)
    await until(() => scanIssued, 'the scan to be issued', 10_000)
    // Another instance, accept-only, commits an event after that scan's snapshot and says so.
    const now = Date.now()
    await admin.query(`INSERT INTO ${schema}.events (id, type, body, received_at, next_attempt_at) VALUES ($1, 'action.completed', $2, $3, $3)`,
      ['evt_other', JSON.stringify(event('evt_other')), now])
    await admin.query(`SELECT pg_notify('${schema}_events', 'deadbeefdeadbeef:accept-only')`)
    await sleep(50)
    // B finishes its event and starts a search while the scan is still in flight.
    releaseSlow?.()
    await until(() => slowCommitted, 'the slow batch to commit', 10_000)
    await sleep(50)
    releaseScan?.()

    const deadline = Date.now() + 3_000
    while (!handled.includes('evt_other') && Date.now() < deadline) await sleep(50)
    t.comment(`scans issued after the held one: ${scansAfter}`)
    t.ok(handled.includes('evt_other'), 'the other instance\'s event is handled within 3 s (the poll is a minute away)')
    await webhooks.close()
  })

  t.test('an idle instance runs its own accept while another instance holds the 200 oldest due rows', async (t) => {
    const schema = freshSchema()
    t.teardown(() => admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
    // An accept-only start creates the tables; handlers come later.
    const webhooks = receiverWith(t, postgresInbox({ connectionString: url, schema, pollIntervalMs: 200 }))
    await tablesMade(webhooks, schema)
    // The other instance's workers: ten open claims of 24 rows each.
    const { other } = await heldByAnotherInstance(schema)

    const handled: string[] = []
    webhooks.on('action.completed', async function h (evt) { handled.push(evt.id) })
    await sleep(500) // a poll scans now that handlers exist: 200 locked ids
    t.equal((await webhooks.receive(delivery(event('evt_mine')))).code, 'ACCEPTED')
    const deadline = Date.now() + 3_000
    while (!handled.includes('evt_mine') && Date.now() < deadline) await sleep(50)
    t.ok(handled.includes('evt_mine'), 'this instance\'s own event runs within 3 s while its workers are idle')
    await other.query('ROLLBACK')
    other.release()
    await until(() => handled.includes('evt_mine'), 'evt_mine once the rows are released', 10_000)
    t.pass('it runs once the other instance lets go')
    await webhooks.close()
  })

  t.test('after a full scan of rows others held, a worker stops with its own accept waiting: the next poll, not their release, brings it', async (t) => {
    const schema = freshSchema()
    t.teardown(() => admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
    const webhooks = receiverWith(t, postgresInbox({ connectionString: url, schema, pollIntervalMs: 60_000 }))
    const handled: string[] = []
    webhooks.on('action.completed', async function h (evt) { handled.push(evt.id) })
    await tablesMade(webhooks, schema)
    const { other, otherIds } = await heldByAnotherInstance(schema)
    // Another instance's accept-only wake-up: a scan, which lists 200 held rows.
    await admin.query(`SELECT pg_notify('${schema}_events', 'deadbeefdeadbeef:accept-only')`)
    await sleep(200)
    t.equal((await webhooks.receive(delivery(event('evt_mine')))).code, 'ACCEPTED')
    await sleep(300)
    // The other instance finishes its events and lets go.
    await other.query(`UPDATE ${schema}.events SET state = 'done', finished_at = 1 WHERE id = ANY ($1)`, [otherIds])
    await other.query('COMMIT')
    other.release()
    const deadline = Date.now() + 3_000
    while (!handled.includes('evt_mine') && Date.now() < deadline) await sleep(50)
    t.ok(handled.includes('evt_mine'), 'this instance\'s own event runs within 3 s of the rows being released (the poll is a minute away)')
    await webhooks.close()
  })
}
