import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import pg from 'pg'
import t, { type Test } from 'tap'
import { bullmqInbox } from '../src/bullmq/inbox.js'
import { postgresInbox } from '../src/postgres/inbox.js'
import type { Inbox } from '../src/index.js'
import { freshSchema, postgresForTests } from './helpers/postgres.js'
import { redisForTests } from './helpers/redis.js'
import { delivery, event, receiver, until } from './inbox-contract/support.js'

// Issue 22, item 1, on the shared stores: maxBacklog bounds the backlog, an
// explicit maxQueueSize too, and BullMQ stops taking events near Redis's maxmemory.

/** Three events into a receiver whose handler waits: two fit a bound of 2, the third gets 503; then room again. */
async function boundHolds (t: Test, inbox: Inbox, options: { maxQueueSize?: number } = {}): Promise<void> {
  const webhooks = receiver(inbox, { retryAfterSeconds: 4, concurrency: 1, ...options })
  t.teardown(() => webhooks.close())
  let release: () => void = () => {}
  const held = new Promise<void>((resolve) => { release = resolve })
  const handled: string[] = []
  webhooks.on('action.completed', async (evt) => { await held; handled.push(evt.id) }, { name: 'record' })
  t.equal((await webhooks.receive(delivery(event('evt_1')))).code, 'ACCEPTED')
  t.equal((await webhooks.receive(delivery(event('evt_2')))).code, 'ACCEPTED')
  const full = await webhooks.receive(delivery(event('evt_3')))
  t.equal(full.status, 503)
  t.equal(full.code, 'QUEUE_FULL')
  t.equal(full.headers['retry-after'], '4')
  t.equal(await webhooks.inbox.outcome?.('evt_3'), undefined, 'nothing recorded')
  release()
  await until(() => handled.length === 2, 'the two events')
  await until(async () => (await webhooks.receive(delivery(event('evt_3')))).code === 'ACCEPTED', 'room again for the retry')
  await until(() => handled.length === 3, 'the retried event')
}

const postgres = await postgresForTests(t)
t.test('Postgres', { skip: postgres.url === undefined ? `no PostgreSQL (${postgres.reason ?? ''})` : false }, async (t) => {
  const url = postgres.url as string
  const admin = new pg.Pool({ connectionString: url, max: 2 })
  t.teardown(() => admin.end())
  const schemaFor = (t: Test): string => {
    const schema = freshSchema()
    t.teardown(() => admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
    return schema
  }
  t.test('a small maxBacklog answers 503 QUEUE_FULL with Retry-After, then room again', async (t) => {
    await boundHolds(t, postgresInbox({ connectionString: url, schema: schemaFor(t), pollIntervalMs: 100, maxBacklog: 2 }))
  })
  t.test('an explicit maxQueueSize bounds the backlog too, the lower winning', async (t) => {
    await boundHolds(t, postgresInbox({ connectionString: url, schema: schemaFor(t), pollIntervalMs: 100 }), { maxQueueSize: 2 })
  })
})

const redis = await redisForTests(t, { own: true }) // its own: the maxmemory test sets a limit every writer would meet
t.test('BullMQ', { skip: redis.url === undefined ? `no Redis (${redis.reason ?? ''})` : false }, async (t) => {
  if (redis.url === undefined) return
  const { connection, url } = redis
  const admin = new Redis(url)
  t.teardown(() => admin.quit())
  t.test('a small maxBacklog answers 503 QUEUE_FULL with Retry-After, then room again', async (t) => {
    await boundHolds(t, bullmqInbox({ connection, queueName: `bound-${randomUUID()}`, maxBacklog: 2 }))
  })
  t.test('an explicit maxQueueSize bounds the backlog too, the lower winning', async (t) => {
    await boundHolds(t, bullmqInbox({ connection, queueName: `bound-${randomUUID()}`, maxBacklog: 10 }), { maxQueueSize: 2 })
  })
  t.test('past 90% of Redis\'s maxmemory deliveries get 503 QUEUE_FULL and health() says why; room again once it is raised', async (t) => {
    const webhooks = receiver(bullmqInbox({ connection, queueName: `memory-${randomUUID()}` }), { retryAfterSeconds: 6 })
    t.teardown(() => webhooks.close())
    webhooks.on('action.completed', () => {}, { name: 'record' })
    t.equal((await webhooks.receive(delivery(event('evt_before')))).code, 'ACCEPTED')
    const used = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1])
    // Just above what is used: past 90% of it, yet writes still fit (noeviction refuses none yet).
    await admin.config('SET', 'maxmemory', String(Math.ceil(used * 1.05)))
    t.teardown(() => admin.config('SET', 'maxmemory', '0'))
    await until(() => webhooks.health().status === 'degraded', 'the next memory reading')
    t.match(webhooks.health().reasons, [/^Redis uses \d+ MiB of its maxmemory \d+ MiB \(past 90%\): deliveries get 503/])
    const refused = await webhooks.receive(delivery(event('evt_no_room')))
    t.equal(refused.status, 503)
    t.equal(refused.code, 'QUEUE_FULL')
    t.equal(refused.headers['retry-after'], '6')
    t.equal((await webhooks.receive(delivery(event('evt_before')))).code, 'DUPLICATE', 'a duplicate is still one')
    await admin.config('SET', 'maxmemory', '0')
    await until(() => webhooks.health().status === 'ok', 'the next memory reading')
    t.equal((await webhooks.receive(delivery(event('evt_no_room')))).code, 'ACCEPTED', 'room again')
  })
})
