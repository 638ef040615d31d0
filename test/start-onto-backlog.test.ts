import { randomUUID } from 'node:crypto'
import pg from 'pg'
import t, { type Test } from 'tap'
import { bullmqInbox } from '../src/bullmq/inbox.js'
import { START_LOW_BACKLOG } from '../src/core/accept-priority.js'
import { postgresInbox } from '../src/postgres/inbox.js'
import type { Inbox } from '../src/index.js'
import { freshSchema, postgresForTests } from './helpers/postgres.js'
import { redisForTests } from './helpers/redis.js'
import { delivery, event, receiver, sleep, until } from './inbox-contract/support.js'

// Issue 22, item 1: a receiver started onto a large backlog (a deploy while a
// burst drains) begins with one handler slot, so that its first
// acknowledgements are not held behind a drain at full speed; with no
// deliveries arriving it has every slot again after 2 s. On Postgres the workers
// ask for their allowance, so the raise must wake them; on BullMQ it is set on
// the worker.

const CONCURRENCY = 8

/** START_LOW_BACKLOG events accepted by a receiver without handlers, which is then closed. */
async function fill (inbox: Inbox): Promise<void> {
  const filler = receiver(inbox)
  for (let start = 0; start < START_LOW_BACKLOG; start += 500) {
    const answers = await Promise.all(Array.from({ length: 500 }, async (_, index) => await filler.receive(delivery(event(`evt_backlog_${start + index}`)))))
    const refused = answers.filter(({ status }) => status !== 202 && status !== 200)
    if (refused.length > 0) throw new Error(`the backlog was not accepted: ${refused[0]!.code}`)
  }
  await filler.close()
}

/**
 * Handlers that take 20 ms, or with `held` that wait until the end: then only a
 * worker woken by the raise itself can take the slots back, none finishing.
 */
async function startsLow (t: Test, inbox: Inbox, { held = false } = {}): Promise<void> {
  const webhooks = receiver(inbox, { concurrency: CONCURRENCY })
  let release: () => void = () => {}
  const released = new Promise<void>((resolve) => { release = resolve })
  t.teardown(async () => {
    release()
    await webhooks.close()
  })
  let inFlight = 0
  let firstAt: number | undefined
  let earlyMost = 0
  let most = 0
  webhooks.on('action.completed', async () => {
    const now = Date.now()
    firstAt ??= now
    inFlight++
    most = Math.max(most, inFlight)
    // The first 700 ms of handler work, well inside the 2 s without deliveries that gives every slot back.
    if (now - firstAt < 700) earlyMost = Math.max(earlyMost, inFlight)
    await (held ? released : sleep(20))
    inFlight--
  }, { name: 'record' })
  await until(() => firstAt !== undefined && Date.now() - firstAt >= 700, 'the first 700 ms of handler work')
  t.equal(earlyMost, 1, 'one handler at a time at first, no delivery arriving to step it up')
  await until(() => most === CONCURRENCY, `all ${CONCURRENCY} slots once no delivery came for 2 s (saw ${most})`)
  t.equal(most, CONCURRENCY, 'every slot again')
  release()
}

const postgres = await postgresForTests(t)
t.test('Postgres: a receiver started onto a backlog begins with one slot, and the workers are woken when they come back', { skip: postgres.url === undefined ? `no PostgreSQL (${postgres.reason ?? ''})` : false }, async (t) => {
  const url = postgres.url as string
  const admin = new pg.Pool({ connectionString: url, max: 1 })
  const schema = freshSchema()
  t.teardown(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await admin.end()
  })
  await fill(postgresInbox({ connectionString: url, schema }))
  // A poll a minute away: only the raise itself can wake a worker in time.
  await startsLow(t, postgresInbox({ connectionString: url, schema, pollIntervalMs: 60_000 }), { held: true })
})

const redis = await redisForTests(t, { own: true }) // its own: ten thousand jobs would crowd the shared one
t.test('BullMQ: a receiver started onto a backlog begins with a worker concurrency of one, and has it all again', { skip: redis.url === undefined ? `no Redis (${redis.reason ?? ''})` : false }, async (t) => {
  if (redis.url === undefined) return
  const queueName = `start-low-${randomUUID()}`
  await fill(bullmqInbox({ connection: redis.connection, queueName }))
  await startsLow(t, bullmqInbox({ connection: redis.connection, queueName }))
})
