// What the Postgres inbox promises about time and bounds, against a database
// that stalls (issue 20 items 5, 7 and 11): every delivery answered within
// acceptTimeoutMs, a queue bound that follows the real backlog, and claims that
// a stopped receiver cannot hold forever.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import t, { type Test } from 'tap'
import type { WebhooksOptions } from '../src/index.js'
import { postgresInbox, type PostgresInbox, type PostgresInboxOptions } from '../src/postgres/inbox.js'
import { freshSchema, postgresForTests } from './helpers/postgres.js'
import { startPostgresCluster } from './helpers/postgres-cluster.js'
import { postgresTestTables, type PostgresReceiver } from './helpers/postgres-tables.js'
import { SECRET, delivery, event, sleep, until } from './inbox-contract/support.js'

/**
 * A receiver in a process of its own, to be stopped with SIGSTOP: it accepts one
 * event itself and prints `started` when its handler begins (the handler then
 * waits a minute, holding the claim).
 */
function stoppableReceiver (url: string, schema: string, id: string): string {
  const src = new URL('../src/', import.meta.url).href
  return `
    const { Webhooks, sign } = await import('${src}index.js')
    const { postgresInbox } = await import('${src}postgres/inbox.js')
    const webhooks = new Webhooks({ secret: '${SECRET}', inbox: postgresInbox({ connectionString: '${url}', schema: '${schema}', idleInTransactionTimeoutMs: 1500, pollIntervalMs: 100 }) })
    webhooks.on('action.completed', async function hold () {
      process.stdout.write('started\\n')
      await new Promise((resolve) => setTimeout(resolve, 60_000))
    })
    const rawBody = Buffer.from(JSON.stringify({ id: '${id}', type: 'action.completed', createdAt: '2026-05-10T09:12:00Z', data: {} }))
    const { timestamp, signature } = sign({ secret: '${SECRET}', rawBody })
    await webhooks.receive({ contentType: 'application/json', signature, timestamp, rawBody })
  `
}

/** The server process and its children (backends, background workers): what SIGSTOP stalls. */
async function serverProcesses (url: string): Promise<number[]> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
  const parentOf = (pid: number | string): number => {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
  }
  const postmaster = parentOf(rows[0]!.pid)
  await client.end()
  const children = readdirSync('/proc').filter((name) => /^\d+$/.test(name)).filter((pid) => {
    try {
      return parentOf(pid) === postmaster
    } catch {
      return false
    }
  }).map(Number)
  return [postmaster, ...children]
}

const postgres = await postgresForTests(t)
if (postgres.url === undefined) {
  t.test(`Postgres deadline tests skipped: no PostgreSQL (${postgres.reason})`, async () => {})
} else {
  const url = postgres.url
  const admin = new pg.Pool({ connectionString: url, max: 6 })
  t.teardown(() => admin.end())
  const { receiverWith } = postgresTestTables(admin)
  const receiverOn = (t: Test, schema: string, inboxOptions: Partial<PostgresInboxOptions> = {}, options: Partial<WebhooksOptions<PostgresInbox>> = {}): PostgresReceiver =>
    receiverWith(t, postgresInbox({ connectionString: url, schema, ...inboxOptions }), options)
  const dropLater = (t: Test, schema: string): void => { t.teardown(() => admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)) }

  /** Sends `ids` one every `gapMs`, each answer timed from its own send. */
  const sendSpaced = async (webhooks: PostgresReceiver, ids: readonly string[], gapMs: number): Promise<Array<{ id: string, status: number, ms: number }>> =>
    await Promise.all(ids.map(async (id, index) => {
      await sleep(index * gapMs)
      const sent = Date.now()
      const result = await webhooks.receive(delivery(event(id)))
      return { id, status: result.status, ms: Date.now() - sent }
    }))

  t.test('a table locked by another session: every delivery, those queued behind the stuck batches too, gets its 503 within acceptTimeoutMs, and none is recorded', async (t) => {
    const schema = freshSchema()
    dropLater(t, schema)
    const pool = new pg.Pool({ connectionString: url, max: 4 })
    t.teardown(() => pool.end())
    const webhooks = receiverWith(t, postgresInbox({ pool, schema, acceptTimeoutMs: 500 }), { concurrency: 1 })
    t.equal((await webhooks.receive(delivery(event('evt_before')))).status, 200)
    const locker = await admin.connect()
    t.teardown(() => { locker.release() })
    await locker.query('BEGIN')
    await locker.query(`LOCK TABLE ${schema}.events IN ACCESS EXCLUSIVE MODE`)
    const ids = Array.from({ length: 12 }, (_, index) => `evt_stalled_${index}`)
    // Spaced out, so that they make more batches than can be in flight at once.
    const answers = await Promise.race([
      sendSpaced(webhooks, ids, 30),
      sleep(6_000).then(() => [])
    ])
    t.equal(answers.length, 12, 'every delivery was answered while the lock was held')
    t.same(answers.filter(({ status }) => status !== 503), [], 'each got 503')
    const slowest = answers.length === 0 ? Number.POSITIVE_INFINITY : Math.max(...answers.map(({ ms }) => ms))
    t.ok(slowest < 1_500, `each within acceptTimeoutMs and some slack (slowest ${slowest} ms, timeout 500 ms)`)
    await locker.query('ROLLBACK')
    t.equal((await webhooks.receive(delivery(event('evt_after')))).status, 200, 'once the lock is gone, deliveries are accepted again')
    const { rows } = await admin.query<{ id: string }>(`SELECT id FROM ${schema}.events WHERE id = ANY ($1)`, [ids])
    t.same(rows, [], 'nothing answered 503 was recorded')
  })

  t.test('the database server stopped (SIGSTOP of the postmaster and its backends), an app pool with no connect timeout, 20 senders: each gets its 503 within acceptTimeoutMs; deliveries are accepted again once it resumes', async (t) => {
    // A server of this test's own: stopping the shared one would stall the other tests.
    const cluster = await startPostgresCluster()
    t.teardown(() => { cluster.stop() })
    const pool = new pg.Pool({ connectionString: cluster.url, max: 14 })
    pool.on('error', () => {})
    const webhooks = receiverWith(t, postgresInbox({ pool, schema: 'sir_stalled', acceptTimeoutMs: 1_000 }))
    t.teardown(() => pool.end().catch(() => {}))
    webhooks.on('action.completed', function noop () {})
    t.equal((await webhooks.receive(delivery(event('evt_before')))).status, 200)
    const stopped = await serverProcesses(cluster.url)
    let resumed = false
    const resume = (): void => {
      if (resumed) return
      resumed = true
      for (const pid of stopped) {
        try { process.kill(pid, 'SIGCONT') } catch { /* already gone */ }
      }
    }
    t.teardown(resume)
    for (const pid of stopped) {
      // A backend listed a moment ago (the listing client's own) may have exited since.
      try { process.kill(pid, 'SIGSTOP') } catch (error) { if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error }
    }
    const ids = Array.from({ length: 20 }, (_, index) => `evt_server_stopped_${index}`)
    const answers = await Promise.race([
      sendSpaced(webhooks, ids, 50),
      sleep(8_000).then(() => [])
    ])
    t.equal(answers.length, 20, 'every delivery was answered while the server was stopped')
    t.same(answers.filter(({ status }) => status !== 503), [], 'each got 503')
    const slowest = answers.length === 0 ? Number.POSITIVE_INFINITY : Math.max(...answers.map(({ ms }) => ms))
    t.ok(slowest < 2_000, `each within acceptTimeoutMs and some slack (slowest ${slowest} ms, timeout 1 000 ms)`)
    t.equal(webhooks.inbox.health().status, 'degraded', 'health says degraded')
    resume()
    await until(async () => (await webhooks.receive(delivery(event('evt_after')))).status === 200, 'a delivery to be accepted once the server resumed', 20_000)
  })

  t.test('a COMMIT that hangs: the delivery gets its 503 at acceptTimeoutMs, not later (the event may still be recorded, in doubt)', async (t) => {
    const schema = freshSchema()
    dropLater(t, schema)
    const webhooks = receiverOn(t, schema, { acceptTimeoutMs: 1_000 })
    t.equal((await webhooks.receive(delivery(event('evt_before')))).status, 200)
    // A deferred trigger runs at COMMIT: it holds the commit of this one event for 4 s.
    await admin.query(`
      CREATE FUNCTION ${schema}.slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.id = 'evt_slow_commit' THEN PERFORM pg_sleep(4); END IF; RETURN NULL; END $$;
      CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON ${schema}.events DEFERRABLE INITIALLY DEFERRED
      FOR EACH ROW EXECUTE FUNCTION ${schema}.slow_commit()`)
    const sent = Date.now()
    const result = await webhooks.receive(delivery(event('evt_slow_commit')))
    const ms = Date.now() - sent
    t.equal(result.status, 503)
    t.ok(ms < 1_700, `answered within acceptTimeoutMs and some slack (${ms} ms, timeout 1 000 ms)`)
    t.ok(webhooks.log.some((entry) => entry.msg?.includes('no answer to a COMMIT') === true), 'logged as in doubt')
    await until(async () => (await webhooks.inbox.outcome('evt_slow_commit')) !== undefined, 'the commit to land', 10_000)
    t.equal((await webhooks.receive(delivery(event('evt_slow_commit')))).code, 'DUPLICATE', 'the sender\'s retry is a duplicate')
  })

  t.test('maxQueueSize follows the backlog: events finished here free their place before the next poll', async (t) => {
    const schema = freshSchema()
    dropLater(t, schema)
    // A poll a minute away: only what this process knows can change the count.
    const webhooks = receiverOn(t, schema, { pollIntervalMs: 60_000 }, { maxQueueSize: 5 })
    const handled: string[] = []
    webhooks.on('action.completed', function record (evt) { handled.push(evt.id) })
    for (let round = 0; round < 3; round++) {
      const results = await Promise.all(Array.from({ length: 5 }, async (_, index) => await webhooks.receive(delivery(event(`evt_round_${round}_${index}`)))))
      t.same(results.map((result) => result.code), ['ACCEPTED', 'ACCEPTED', 'ACCEPTED', 'ACCEPTED', 'ACCEPTED'], `round ${round}: 5 accepted with 0 pending`)
      await until(() => handled.length === 5 * (round + 1), `round ${round} to be handled`)
      await until(() => webhooks.inbox.size === 0, `round ${round}'s events to leave the count`)
    }
    t.equal(webhooks.stats().deliveries.refused, 0, 'nothing was refused')
  })

  t.test('maxQueueSize across instances: an accept-only instance counts again before refusing, and still refuses a real backlog', async (t) => {
    const schema = freshSchema()
    dropLater(t, schema)
    const front = receiverOn(t, schema, { pollIntervalMs: 60_000 }, { maxQueueSize: 5 })
    const send = async (prefix: string): Promise<string[]> =>
      await Promise.all(Array.from({ length: 5 }, async (_, index) => (await front.receive(delivery(event(`${prefix}_${index}`)))).code))
    t.same(await send('evt_first'), Array(5).fill('ACCEPTED'))
    t.equal((await front.receive(delivery(event('evt_sixth')))).code, 'QUEUE_FULL', 'with 5 pending and no worker, the sixth is refused')
    // A worker elsewhere runs them; the front instance hears of none of it.
    const worker = receiverOn(t, schema, { pollIntervalMs: 100 })
    let handled = 0
    worker.on('action.completed', function record () { handled++ })
    await until(async () => handled === 5 && (await worker.inbox.counts()).done === 5, 'the worker to finish the 5 events')
    // A full inbox counts again at most every 100 ms (backlog.ts); the sixth's count was just taken.
    await sleep(150)
    t.same(await send('evt_second'), Array(5).fill('ACCEPTED'), 'the front instance counts again and accepts')
  })

  t.test('the idle limit is what a handler\'s transaction sees, whether the connection string sets options of its own or not', async (t) => {
    const withOptions = `${url}?options=${encodeURIComponent('-c application_name=from_the_url')}`
    for (const [connectionString, what] of [[url, 'a plain connection string'], [withOptions, 'one with options']] as const) {
      const schema = freshSchema()
      dropLater(t, schema)
      const webhooks = receiverWith(t, postgresInbox({ connectionString, schema, idleInTransactionTimeoutMs: 7_000 }))
      const seen: string[] = []
      webhooks.on('action.completed', async function show (_evt, { transaction }) {
        const { rows } = await transaction.query<{ limit: string, name: string }>("SELECT current_setting('idle_in_transaction_session_timeout') AS limit, current_setting('application_name') AS name")
        seen.push(`${rows[0]!.limit} ${rows[0]!.name}`)
      })
      t.equal((await webhooks.receive(delivery(event('evt_show')))).status, 200)
      await until(() => seen.length === 1, 'the handler to run')
      t.match(seen[0], /^7s/, `${what}: 7 s`)
      if (connectionString === withOptions) t.match(seen[0], / from_the_url$/, 'and the connection string\'s own options still apply')
    }
  })

  // The limit is on the sessions of the inbox's own pool, and in each transaction on an app's pool.
  for (const poolKind of ['its own pool', 'the app\'s pool'] as const) {
  t.test(`a receiver whose handler hangs holding its claim (${poolKind}): after idleInTransactionTimeoutMs the server ends its session and another instance runs the event`, async (t) => {
    const schema = freshSchema()
    dropLater(t, schema)
    const appPool = poolKind === 'its own pool' ? undefined : new pg.Pool({ connectionString: url, max: 14 })
    if (appPool !== undefined) {
      appPool.on('error', () => {})
      t.teardown(() => appPool.end())
    }
    const stuck = receiverWith(t, postgresInbox({ ...(appPool === undefined ? { connectionString: url } : { pool: appPool }), schema, idleInTransactionTimeoutMs: 1_000, pollIntervalMs: 100 }))
    let started = false
    stuck.on('action.completed', async function hangs () {
      started = true
      // A process stopped mid-handler looks the same to the server: a session idle in its transaction.
      await new Promise(() => {})
    })
    t.equal((await stuck.receive(delivery(event('evt_held')))).status, 200)
    await until(() => started, 'the handler to start')
    const other = receiverOn(t, schema, { pollIntervalMs: 100 })
    const ran: Array<{ id: string, attempt: number }> = []
    const since = Date.now()
    other.on('action.completed', function runs (evt, { attempt }) { ran.push({ id: evt.id, attempt }) })
    await until(() => ran.length > 0, 'the other instance to run the held event', 10_000)
    t.same(ran, [{ id: 'evt_held', attempt: 2 }], 'the other instance ran it, as its second attempt')
    t.ok(Date.now() - since < 5_000, `within a few seconds (${Date.now() - since} ms)`)
    await until(async () => (await other.inbox.outcome('evt_held'))?.state === 'done', 'the event to be done')
  })
  }

  t.test('a receiver stopped with SIGSTOP while it holds a claim: another instance runs the event after idleInTransactionTimeoutMs, while the first is still stopped', async (t) => {
    const schema = freshSchema()
    dropLater(t, schema)
    const dir = mkdtempSync(join(tmpdir(), 'sir-pg-stop-'))
    t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
    const script = join(dir, 'stoppable.mts')
    writeFileSync(script, stoppableReceiver(url, schema, 'evt_stopped'))
    const loader = process.execArgv.filter((arg) => arg.includes('@tapjs/typescript'))
    const child = spawn(process.execPath, [...loader, script], { stdio: ['ignore', 'pipe', 'inherit'] })
    const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
    t.teardown(async () => {
      child.kill('SIGKILL')
      await exited
    })
    await new Promise<void>((resolve, reject) => {
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => { if (chunk.includes('started')) resolve() })
      child.once('exit', (code) => { reject(new Error(`the stoppable receiver exited (${code}) before its handler started`)) })
    })
    child.kill('SIGSTOP')
    const since = Date.now()
    const other = receiverOn(t, schema, { pollIntervalMs: 100 })
    const ran: Array<{ id: string, attempt: number }> = []
    other.on('action.completed', function runs (evt, { attempt }) { ran.push({ id: evt.id, attempt }) })
    await until(() => ran.length > 0, 'the other instance to run the event of the stopped one', 15_000)
    t.same(ran, [{ id: 'evt_stopped', attempt: 2 }], 'the other instance ran it, as its second attempt')
    t.ok(Date.now() - since < 8_000, `within seconds of the stop (${Date.now() - since} ms, idle limit 1 500 ms)`)
    t.equal(child.exitCode, null, 'the first receiver is still there, stopped')
  })
}
