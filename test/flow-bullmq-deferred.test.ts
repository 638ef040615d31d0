// Deferred runs on the BullMQ inbox at the edges: a job that dies while a handler
// was deferred, a deferred job whose dedupe key expired, a redrive after RetryLater.
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
  t.plan(0, `BullMQ deferred runs skipped: no Redis (${redis.reason})`)
} else {
  const { connection, url } = redis

  t.test('a job that dies while a handler was paused names it, and a redrive runs it once', async (t) => {
    const webhooks = receiver(bullmqInbox({ connection, queueName: `fd-dead-${randomUUID()}` }), { retry: { attempts: 2, minDelayMs: 5, maxDelayMs: 5 } })
    t.teardown(() => webhooks.close())
    const credited: string[] = []
    const dead: string[] = []
    webhooks.onDeadLetter((letter) => { dead.push(letter.event.id) })
    webhooks.on('action.completed', async function creditTokens (e) { credited.push(e.id) }, { name: 'creditTokens' })
    webhooks.on('action.completed', async function audit () { throw new Error('audit down') }, { name: 'audit' })
    await webhooks.pause('creditTokens')
    const id = `evt_fd_dead_${randomUUID()}`
    t.equal((await webhooks.receive(delivery(event(id)))).status, 200)
    await until(async () => (await webhooks.inbox.outcome?.(id))?.state === 'dead', 'the job to die of audit', 20_000)
    const [record] = (await webhooks.inbox.deadLetters?.()) ?? []
    t.match(record?.lastError, /audit down/, 'the dead record names the failure')
    t.match(record?.lastError, /not run: deferred \(creditTokens: paused\)/, 'and the handler that never ran')
    t.ok(webhooks.log.some((entry) => entry.level === 'warn' && /did not run/.test(entry.msg ?? '')), 'a warning says so')
    t.same(credited, [], 'creditTokens has not run')
    await webhooks.resume('creditTokens')
    t.equal(await webhooks.inbox.redrive?.(id), true)
    await until(() => credited.length >= 1, 'creditTokens to run after the redrive', 20_000)
    await until(async () => (await webhooks.inbox.outcome?.(id))?.state === 'dead', 'the job to die of audit again', 20_000)
    t.same(credited, [id], 'creditTokens ran exactly once')
  })

  t.test('a deferred job whose dedupe key expired still runs once resumed', async (t) => {
    const queueName = `fd-seen-${randomUUID()}`
    const webhooks = receiver(bullmqInbox({ connection, queueName }))
    const admin = new Redis(url)
    t.teardown(async () => { await webhooks.close(); admin.disconnect() })
    const ran: string[] = []
    webhooks.on('action.completed', async function creditTokens (e) { ran.push(e.id) }, { name: 'creditTokens' })
    await webhooks.pause('creditTokens')
    const id = `evt_fd_seen_${randomUUID()}`
    t.equal((await webhooks.receive(delivery(event(id)))).status, 200)
    await until(() => (webhooks.stats().flow?.handlers.creditTokens?.deferred.paused ?? 0) >= 1, 'the run to be deferred', 10_000)
    // As if dedupeSeconds passed while the handler was paused.
    t.equal(await admin.del(`bull:${queueName}:sir-seen:${jobIdFor(id)}`), 1, 'the dedupe key existed')
    await sleep(1_500)
    t.equal((await webhooks.inbox.outcome?.(id))?.state, 'pending', 'it is still recorded, waiting')
    await webhooks.resume('creditTokens')
    await until(() => ran.length >= 1, 'the run once resumed', 15_000)
    t.same(ran, [id])
  })

  t.test('a re-driven job starts with a fresh RetryLater bound', async (t) => {
    const webhooks = receiver(bullmqInbox({ connection, queueName: `fd-redrive-${randomUUID()}` }), {
      retry: { attempts: 1, minDelayMs: 5, maxDelayMs: 5 },
      retryLater: { maxDeferrals: 2, maxDeferredMs: 600_000 }
    })
    t.teardown(() => webhooks.close())
    let recovered = false
    let runsAfterRedrive = 0
    const dead: string[] = []
    webhooks.onDeadLetter((letter) => { dead.push(letter.event.id) })
    webhooks.on('action.completed', async function callPartner () {
      if (!recovered) throw new RetryLater({ afterMs: 50 })
      runsAfterRedrive += 1
      // One 429 while the backlog drains: within a fresh bound of 2.
      if (runsAfterRedrive === 1) throw new RetryLater({ afterMs: 50 })
    }, { name: 'callPartner' })
    const id = `evt_fd_redrive_${randomUUID()}`
    t.equal((await webhooks.receive(delivery(event(id)))).status, 200)
    await until(() => dead.length === 1, 'dead past the RetryLater bound', 20_000)
    recovered = true
    t.equal(await webhooks.inbox.redrive?.(id), true)
    await until(async () => ['done', 'dead'].includes((await webhooks.inbox.outcome?.(id))?.state ?? ''), 'the re-driven job to finish', 20_000)
    t.equal((await webhooks.inbox.outcome?.(id))?.state, 'done', 'deferred once, then done')
    t.equal(runsAfterRedrive, 2)
    t.equal(dead.length, 1, 'not dead-lettered again')
  })
}
