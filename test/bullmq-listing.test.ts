// What the BullMQ inbox tells an operator: events(query) (the dashboard's listing), the
// oldest waiting event's age, and each event's attempt log.
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import t from 'tap'
import { bullmqInbox } from '../src/bullmq/inbox.js'
import { jobIdFor } from '../src/bullmq/jobs.js'
import { RetryLater } from '../src/index.js'
import { redisForTests } from './helpers/redis.js'
import { delivery, event, receiver, sleep, until } from './inbox-contract/support.js'

const redis = await redisForTests(t)
if (redis.url === undefined) {
  t.plan(0, `BullMQ listing skipped: no Redis (${redis.reason})`)
} else {
  const { connection, url } = redis

  t.test('events(query) filters by type, state and time received; the oldest waiting age is shown', async (t) => {
    const queueName = `listing-${randomUUID()}`
    const webhooks = receiver(bullmqInbox({ connection, queueName }), { retry: { attempts: 1, minDelayMs: 5, maxDelayMs: 5 } })
    const admin = new Redis(url)
    t.teardown(async () => { await webhooks.close(); admin.disconnect() })
    webhooks.on('action.completed', async function credit (e) { if (e.id.includes('dead')) throw new Error('partner said <no>') }, { name: 'credit' })
    webhooks.on('transaction.completed', async function ledger () {}, { name: 'ledger' })
    await webhooks.pause('ledger')
    const finished = async (id: string): Promise<boolean> => ['done', 'dead'].includes((await webhooks.inbox.outcome?.(id))?.state ?? '')
    // e1 waits (its handler is paused); e2 and e4 are done, e3 dead. Apart in time, so each has its own receivedAt.
    const ids = { e1: `e1_${randomUUID()}`, e2: `e2_${randomUUID()}`, e3: `e3_dead_${randomUUID()}`, e4: `e4_${randomUUID()}` }
    t.equal((await webhooks.receive(delivery(event(ids.e1, 'transaction.completed')))).status, 200)
    for (const id of [ids.e2, ids.e3, ids.e4]) {
      await sleep(30)
      t.equal((await webhooks.receive(delivery(event(id)))).status, 200)
      await until(async () => await finished(id), `${id} to finish`, 20_000)
    }
    const events = webhooks.inbox.events?.bind(webhooks.inbox)
    if (events === undefined) throw new Error('the BullMQ inbox has no events()')
    const list = async (query?: Parameters<typeof events>[0]): Promise<string[]> => (await events(query)).map(({ id }) => id)
    const { e1, e2, e3, e4 } = ids
    t.same(await list(), [e4, e3, e2, e1], 'newest received first')
    t.same(await list({ type: 'action.completed' }), [e4, e3, e2], 'by type')
    t.same(await list({ state: 'done' }), [e4, e2], 'by state: done')
    t.same(await list({ state: 'pending' }), [e1], 'by state: pending (a deferred job is pending)')
    const received = async (id: string): Promise<Date> => (await webhooks.inbox.outcome?.(id))?.receivedAt ?? new Date(0)
    t.same(await list({ since: await received(e2), until: await received(e4) }), [e3, e2], 'since is inclusive, until exclusive')
    t.same(await list({ limit: 2 }), [e4, e3], 'limited')
    t.same(await list({ oldestFirst: true, limit: 2 }), [e1, e2], 'oldest first')
    t.same(await list({ state: 'pending', limit: 1, oldestFirst: true }), [e1], 'the longest-waiting pending event')
    t.same(await list({ type: "a' OR 1=1 --" }), [], 'a type is a value')
    const [dead] = await events({ type: 'action.completed', state: 'dead' })
    t.match(dead, { id: e3, type: 'action.completed', state: 'dead', attempts: 1, lastError: /partner said <no>/, event: { id: e3 } })
    await t.rejects(events({ limit: 0 }), { message: /"limit" must be an integer from 1 to 500, got 0/ })

    // The oldest waiting event, for stats() (and so the OpenTelemetry gauge and `inbox stats`).
    await until(() => webhooks.stats().flow?.oldestWaitingMs !== undefined, 'the oldest waiting age', 5_000)
    const age = webhooks.stats().flow?.oldestWaitingMs ?? 0
    const expected = Date.now() - (await received(e1)).getTime()
    t.ok(Math.abs(age - expected) < 2_000, `the oldest waiting age is e1's (${age} ms, expected about ${expected} ms)`)
    // A finished job left in the index (a receiver killed between BullMQ's finish and the index update): not counted.
    await admin.zadd(`bull:${queueName}:sir-pending`, 1, jobIdFor(e2))
    await sleep(700)
    t.ok(Math.abs((webhooks.stats().flow?.oldestWaitingMs ?? 0) - (Date.now() - (await received(e1)).getTime())) < 2_000, 'a stale entry is not taken for the oldest')
    t.same(await list({ state: 'pending' }), [e1], 'nor listed as pending')
    await webhooks.resume('ledger')
    await until(async () => await finished(e1), 'e1 to run once resumed', 20_000)
    await until(() => webhooks.stats().flow?.oldestWaitingMs === undefined, 'no waiting event left', 5_000)
    t.same(await list({ state: 'pending' }), [], 'nothing pending')
    t.equal(await admin.zcard(`bull:${queueName}:sir-pending`), 0, 'the index holds nothing once every event finished')
  })

  t.test('outcome(id).attemptLog: each failed and deferred run, never the body', async (t) => {
    const webhooks = receiver(bullmqInbox({ connection, queueName: `attempt-log-${randomUUID()}` }), { retry: { attempts: 3, minDelayMs: 5, maxDelayMs: 5 } })
    t.teardown(() => webhooks.close())
    let runs = 0
    webhooks.on('action.completed', async function callPartner () {
      runs += 1
      if (runs === 1) throw new Error('partner down')
      if (runs === 2) throw new RetryLater({ afterMs: 50 })
      if (runs === 3) throw new Error('partner down again')
    }, { name: 'callPartner' })
    webhooks.on('action.completed', async function audit () {}, { name: 'audit' })
    const id = `evt_log_${randomUUID()}`
    t.equal((await webhooks.receive(delivery(event(id)))).status, 200)
    await until(async () => (await webhooks.inbox.outcome?.(id))?.state === 'done', 'the event to be done', 20_000)
    const outcome = await webhooks.inbox.outcome?.(id)
    const log = outcome?.attemptLog ?? []
    t.same(log.map(({ handler, attempt, outcome, error }) => ({ handler, attempt, outcome, error })), [
      { handler: 'callPartner', attempt: 1, outcome: 'failed', error: 'Error: partner down' },
      { handler: 'callPartner', attempt: 2, outcome: 'deferred', error: 'RetryLater: the handler asked to be run again in 50 ms' },
      { handler: 'callPartner', attempt: 2, outcome: 'failed', error: 'Error: partner down again' }
    ], 'oldest first: a failure, a RetryLater (no attempt used), a failure; the successes are not in it')
    t.ok(log.every((record) => record.at instanceof Date && record.at.getTime() >= (outcome?.receivedAt.getTime() ?? 0)), 'each has when it ended')
    t.notMatch(JSON.stringify(log), /act_evt_log|tokensDistributed/, 'no part of the body')
  })

  t.test('attemptLog: a handler paused for a while is one record, not one per put-back', async (t) => {
    const webhooks = receiver(bullmqInbox({ connection, queueName: `attempt-log-paused-${randomUUID()}` }))
    t.teardown(() => webhooks.close())
    webhooks.on('action.completed', async function creditTokens () {}, { name: 'creditTokens' })
    await webhooks.pause('creditTokens')
    const id = `evt_log_paused_${randomUUID()}`
    t.equal((await webhooks.receive(delivery(event(id)))).status, 200)
    await until(() => (webhooks.stats().flow?.handlers.creditTokens?.deferred.paused ?? 0) >= 3, 'three put-backs while paused', 15_000)
    const log = (await webhooks.inbox.outcome?.(id))?.attemptLog ?? []
    t.same(log.map(({ handler, outcome, error }) => ({ handler, outcome, error })), [{ handler: 'creditTokens', outcome: 'deferred', error: 'deferred: paused' }])
    await webhooks.resume('creditTokens')
    await until(async () => (await webhooks.inbox.outcome?.(id))?.state === 'done', 'the event to run once resumed', 15_000)
  })
}
