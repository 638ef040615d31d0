import { randomUUID } from 'node:crypto'
import pg from 'pg'
import t, { type Test } from 'tap'
import { bullmqInbox } from '../src/bullmq/inbox.js'
import { START_LOW_BACKLOG } from '../src/core/accept-priority.js'
import { postgresInbox } from '../src/postgres/inbox.js'
import type { Inbox } from '../src/index.js'
import { freshSchema, postgresForTests } from './helpers/postgres.js'
import { redisForTests } from './helpers/redis.js'
import { delivery, event, receiver, until } from './inbox-contract/support.js'

// Issue 22, item 1: a receiver started onto a large backlog (a deploy while a
// burst drains) begins with one handler slot and doubles it every 250 ms by the
// clock, so that its first acknowledgements are not held behind a drain at full
// speed. The handlers here never return until the end: only the ramp itself can
// let more in. On Postgres the workers ask for their allowance, so each raise
// must wake them; on BullMQ a raised worker concurrency would wait for a running
// job to end, so the runs are held at a gate instead.

const CONCURRENCY = 8
const STEP_MS = 250

/** START_LOW_BACKLOG events accepted by a receiver without handlers, which is then closed; a 503 is retried, as the platform would. */
async function fill (inbox: Inbox): Promise<void> {
  const filler = receiver(inbox)
  const accepted = async (id: string): Promise<void> => {
    await until(async () => { const { status } = await filler.receive(delivery(event(id))); return status >= 200 && status < 300 }, `${id} accepted`)
  }
  for (let start = 0; start < START_LOW_BACKLOG; start += 500) {
    await Promise.all(Array.from({ length: 500 }, async (_, index) => { await accepted(`evt_backlog_${start + index}`) }))
  }
  await filler.close()
}

async function startsLow (t: Test, inbox: Inbox): Promise<void> {
  // Before the receiver exists, so before its ramp began: the ramp allows at most
  // 2 ** steps since then, and a start counted from here can only be later than it was.
  const createdAt = Date.now()
  const webhooks = receiver(inbox, { concurrency: CONCURRENCY })
  let release: () => void = () => {}
  const released = new Promise<void>((resolve) => { release = resolve })
  t.teardown(async () => {
    release()
    await webhooks.close()
  })
  let inFlight = 0
  const over: string[] = []
  webhooks.on('action.completed', async () => {
    inFlight++
    const sinceCreated = Date.now() - createdAt
    const cap = 2 ** Math.floor(sinceCreated / STEP_MS)
    if (inFlight > cap) over.push(`${inFlight} running ${sinceCreated} ms after the start`)
    await released
    inFlight--
  }, { name: 'record' })
  await until(() => inFlight === CONCURRENCY, `all ${CONCURRENCY} slots, no handler having returned and no delivery arriving`)
  t.equal(inFlight, CONCURRENCY, 'every slot, by the ramp alone')
  t.same(over, [], 'never more than one slot at first, doubling each 250 ms')
  release()
}

const postgres = await postgresForTests(t)
t.test('Postgres: a receiver started onto a backlog begins with one slot, and its workers are woken as the ramp raises it', { skip: postgres.url === undefined ? `no PostgreSQL (${postgres.reason ?? ''})` : false }, async (t) => {
  const url = postgres.url as string
  const admin = new pg.Pool({ connectionString: url, max: 1 })
  const schema = freshSchema()
  t.teardown(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await admin.end()
  })
  await fill(postgresInbox({ connectionString: url, schema }))
  // A poll a minute away: only the raises themselves can wake a worker in time.
  await startsLow(t, postgresInbox({ connectionString: url, schema, pollIntervalMs: 60_000 }))
})

const redis = await redisForTests(t, { own: true }) // its own: ten thousand jobs would crowd the shared one
t.test('BullMQ: a receiver started onto a backlog begins with one slot, and takes the rest with its running jobs still running', { skip: redis.url === undefined ? `no Redis (${redis.reason ?? ''})` : false }, async (t) => {
  if (redis.url === undefined) return
  const queueName = `start-low-${randomUUID()}`
  await fill(bullmqInbox({ connection: redis.connection, queueName }))
  await startsLow(t, bullmqInbox({ connection: redis.connection, queueName }))
})
