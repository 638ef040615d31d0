// A redelivery after the id's dedupe key expired: while the done or dead job is kept its
// record answers "duplicate" (or "duplicate-differs"), and once it is gone too the event
// is queued and runs again. Never "accepted" for an event that will not run. Also: the
// job keeps the event once, as its body, and jobs written with the event alone still run.
import { randomUUID } from 'node:crypto'
import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import t from 'tap'
import { bullmqInbox, jobIdFor } from '../src/bullmq/inbox.js'
import { redisForTests } from './helpers/redis.js'
import { delivery, event, receiver, sleep, until } from './inbox-contract/support.js'

const redis = await redisForTests(t)
if (redis.url === undefined) {
  t.comment(`BullMQ tests that need Redis skipped: ${redis.reason}`)
} else {
  const { url, connection } = redis
  const admin = new Redis(url)
  t.teardown(() => { admin.disconnect() })

  /** What happens once the dedupe key's days are over, without waiting for them. */
  const expireKey = async (queueName: string, id: string): Promise<number> => await admin.del(`bull:${queueName}:sir-seen:${jobIdFor(id)}`)

  for (const state of ['dead', 'done'] as const) {
    t.test(`a ${state} event redelivered after its dedupe key expired: a duplicate while its record is kept, run again once it is gone`, async (t) => {
      const queueName = `redelivered-${state}-${randomUUID()}`
      const inbox = bullmqInbox({ connection, queueName, retentionSeconds: 1, deadLetterRetentionSeconds: 1 })
      const webhooks = receiver(inbox, { retry: { attempts: 1, minDelayMs: 1, maxDelayMs: 2 } })
      t.teardown(() => webhooks.close())
      let runs = 0
      let fail = state === 'dead'
      webhooks.on('action.completed', () => {
        runs++
        if (fail) throw new Error('partner down')
      }, { name: 'record' })
      const id = `evt_${state}_again`
      t.equal((await webhooks.receive(delivery(event(id)))).code, 'ACCEPTED')
      await until(async () => (await inbox.outcome(id))?.state === state, `the event to be ${state}`)
      fail = false
      t.equal(await expireKey(queueName, id), 1, 'the dedupe key is gone')

      const same = await webhooks.receive(delivery(event(id)))
      t.equal(same.status, 200)
      t.equal(same.code, 'DUPLICATE', 'the kept record answers: duplicate, not accepted')
      t.equal(webhooks.stats().deliveries.duplicateDiffers, 0, 'the same body is a plain duplicate')
      const other = await webhooks.receive(delivery({ ...event(id), data: { changed: true } }))
      t.equal(other.code, 'DUPLICATE')
      t.equal(webhooks.stats().deliveries.duplicateDiffers, 1, 'a different body is told apart by the body the record holds')
      await sleep(300)
      t.equal(runs, 1, 'neither ran')
      t.equal((await inbox.outcome(id))?.state, state, 'the record is as it was')

      await sleep(1_100)
      t.same(await inbox.purge(), state === 'dead' ? { done: 0, dead: 1 } : { done: 1, dead: 0 }, 'the record goes')
      t.equal(await inbox.outcome(id), undefined)
      const later = await webhooks.receive(delivery(event(id)))
      t.equal(later.code, 'ACCEPTED', 'with neither key nor record, the id is new again')
      await until(async () => runs === 2 && (await inbox.outcome(id))?.state === 'done', 'the accepted redelivery to run')
      t.equal(runs, 2, 'and it ran')
    })
  }

  t.test('a dead letter whose dedupe key expired is still re-driven and run', async (t) => {
    const queueName = `redrive-expired-${randomUUID()}`
    const inbox = bullmqInbox({ connection, queueName })
    const webhooks = receiver(inbox, { retry: { attempts: 1 } })
    t.teardown(() => webhooks.close())
    let runs = 0
    webhooks.on('action.completed', () => { if (++runs === 1) throw new Error('partner down') }, { name: 'record' })
    t.equal((await webhooks.receive(delivery(event('evt_redrive_late')))).code, 'ACCEPTED')
    await until(async () => (await inbox.outcome('evt_redrive_late'))?.state === 'dead', 'the dead letter')
    await expireKey(queueName, 'evt_redrive_late')
    t.equal(await inbox.redrive('evt_redrive_late'), true)
    await until(async () => (await inbox.outcome('evt_redrive_late'))?.state === 'done', 'the re-driven event to run')
    t.equal(runs, 2)
  })

  t.test('a job keeps the event once, as the body received; a job written with the event alone still runs', async (t) => {
    const queueName = `one-copy-${randomUUID()}`
    const inbox = bullmqInbox({ connection, queueName })
    const webhooks = receiver(inbox)
    t.teardown(() => webhooks.close())
    const handled: unknown[] = []
    webhooks.on('action.completed', (e) => { handled.push({ id: e.id, data: e.data }) }, { name: 'record' })
    t.equal((await webhooks.receive(delivery(event('evt_one_copy')))).code, 'ACCEPTED')
    await until(async () => (await inbox.outcome('evt_one_copy'))?.state === 'done', 'the event to run')
    const stored = JSON.parse(await admin.hget(`bull:${queueName}:${jobIdFor('evt_one_copy')}`, 'data') ?? '{}') as Record<string, unknown>
    t.same(Object.keys(stored).sort(), ['body', 'receivedAt'], 'the job data holds the body and no parsed copy')
    t.equal(stored.body, JSON.stringify(event('evt_one_copy')))
    t.same((await inbox.outcome('evt_one_copy'))?.event, event('evt_one_copy'), 'outcome(id).event is parsed from the body')

    // A job as an earlier version wrote it: the parsed event and no body, its key set.
    const legacy = event('evt_legacy')
    const jobId = jobIdFor('evt_legacy')
    const queue = new Queue(queueName, { connection })
    t.teardown(() => queue.close())
    await admin.set(`bull:${queueName}:sir-seen:${jobId}`, String(Date.now()), 'EX', 3600)
    await queue.add('action.completed', { event: legacy, receivedAt: Date.now() }, { jobId })
    await until(async () => (await inbox.outcome('evt_legacy'))?.state === 'done', 'the older job to run')
    t.same(handled, [{ id: 'evt_one_copy', data: event('evt_one_copy').data }, { id: 'evt_legacy', data: legacy.data }], 'both ran with their events')
    t.same((await inbox.outcome('evt_legacy'))?.event, legacy)
  })

  t.test('a job whose body is no longer an event (edited in Redis) is failed without running, and said so without the body', async (t) => {
    const queueName = `unreadable-${randomUUID()}`
    const inbox = bullmqInbox({ connection, queueName })
    const webhooks = receiver(inbox, { retry: { attempts: 3 } })
    t.teardown(() => webhooks.close())
    let runs = 0
    webhooks.on('action.completed', () => { runs++ }, { name: 'record' })
    const jobId = jobIdFor('evt_edited')
    const queue = new Queue(queueName, { connection })
    t.teardown(() => queue.close())
    await admin.set(`bull:${queueName}:sir-seen:${jobId}`, String(Date.now()), 'EX', 3600)
    await queue.add('action.completed', { body: '{"id":"evt_edited", secret-ish text', receivedAt: Date.now() }, { jobId, attempts: 3 })
    await until(async () => (await inbox.counts()).dead === 1, 'the job to fail')
    t.equal((await queue.getJob(jobId))?.attemptsMade, 1, 'at once: no retry can help')
    t.equal(runs, 0, 'no handler ran')
    const logged = webhooks.log.find((entry) => /not an event/.test(entry.msg ?? ''))
    t.match(logged, { level: 'error', fields: { job: { id: jobId } } }, 'logged with the job id')
    t.notOk(JSON.stringify(webhooks.log).includes('secret-ish'), 'and not the body')
  })
}
