// What the BullMQ inbox keeps of an event and answers about it: the exact body, a
// duplicate whose body differs, data JSON allows but stores choke on, the queue bound
// with jobs backing off, and the operator CLI's re-drives and reads against Redis.
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import t from 'tap'
import { bullmqInbox, jobIdFor } from '../src/bullmq/inbox.js'
import { sign, type Delivery } from '../src/index.js'
import { ensureBuilt, runCli } from './cli/helpers.js'
import { redisForTests } from './helpers/redis.js'
import { SECRET, delivery, event, receiver, sleep, until } from './inbox-contract/support.js'

/** A delivery of exactly these bytes: key order and spacing as the sender wrote them. */
function raw (text: string): Delivery {
  const rawBody = Buffer.from(text, 'utf8')
  const { timestamp, signature } = sign({ secret: SECRET, rawBody })
  return { contentType: 'application/json', signature, timestamp, rawBody }
}

t.test('ids that are not well-formed UTF-16 get job ids of their own', async (t) => {
  t.not(jobIdFor('evt_\ud800'), jobIdFor('evt_\ud801'), 'two lone surrogates are two ids, not one U+FFFD')
  t.not(jobIdFor('evt_\ud800'), jobIdFor('evt_\ufffd'))
  t.equal(jobIdFor('evt_abc'), `e${Buffer.from('evt_abc').toString('base64url')}`, 'well-formed ids keep their job ids')
})

const redis = await redisForTests(t)
if (redis.url === undefined) {
  t.comment(`BullMQ tests that need Redis skipped: ${redis.reason}`)
} else {
  const { url, connection } = redis
  const admin = new Redis(url)
  t.teardown(() => { admin.disconnect() })

  t.test('the body is kept exactly as received, and a duplicate whose body differs is told apart', async (t) => {
    const inbox = bullmqInbox({ connection, queueName: `body-${randomUUID()}` })
    const webhooks = receiver(inbox)
    t.teardown(() => webhooks.close())
    const handled: string[] = []
    webhooks.on('action.completed', (e) => { handled.push(e.id) }, { name: 'record' })
    const text = '{ "type": "action.completed",  "id": "evt_body",\n "createdAt": "2026-05-10T09:12:00Z", "data": { "z": 1, "a": "\\u00e9" } }'
    t.equal((await webhooks.receive(raw(text))).code, 'ACCEPTED')
    await until(async () => (await inbox.outcome('evt_body'))?.state === 'done', 'the event to be done')
    t.equal((await inbox.outcome('evt_body'))?.body, text, 'outcome(id).body is the text received, byte for byte')

    const same = await webhooks.receive(raw(text))
    t.equal(same.code, 'DUPLICATE')
    t.equal(webhooks.stats().deliveries.duplicateDiffers, 0, 'the same body again is a plain duplicate')
    const other = await webhooks.receive(raw(text.replace('"z": 1', '"z": 2')))
    t.equal(other.status, 200, 'a duplicate whose body differs is still answered as a duplicate')
    t.equal(other.code, 'DUPLICATE')
    t.equal(webhooks.stats().deliveries.duplicateDiffers, 1, 'and counted')
    t.match(webhooks.log.find((entry) => /body differs/.test(entry.msg ?? '')), { level: 'warn', fields: { event: { id: 'evt_body' } } }, 'and warned about')
    await sleep(200)
    t.same(handled, ['evt_body'], 'neither duplicate ran')
  })

  t.test('a dead letter carries its body; \\u0000, a lone surrogate and such ids are stored and handled intact', async (t) => {
    const inbox = bullmqInbox({ connection, queueName: `odd-${randomUUID()}` })
    const webhooks = receiver(inbox, { retry: { attempts: 1 } })
    t.teardown(() => webhooks.close())
    const seen: unknown[] = []
    webhooks.on('action.completed', (e) => {
      seen.push(e.data)
      if (e.id === 'evt_odd') throw new Error('refused by the partner')
    }, { name: 'record' })
    const text = '{"id":"evt_odd","type":"action.completed","createdAt":"2026-05-10T09:12:00Z","data":{"s":"a\\u0000b\\ud800c"}}'
    t.equal((await webhooks.receive(raw(text))).code, 'ACCEPTED')
    await until(async () => (await inbox.deadLetters()).length === 1, 'the dead letter')
    t.same(seen, [{ s: 'a\u0000b\ud800c' }], 'the handler saw the data intact')
    const [dead] = await inbox.deadLetters()
    t.equal(dead?.body, text, 'the dead letter carries the body as received')
    t.same(dead?.event?.data, { s: 'a\u0000b\ud800c' }, 'and the event, intact')

    const lonely = 'evt_\ud800'
    const twin = 'evt_\ud801'
    for (const id of [lonely, twin]) t.equal((await webhooks.receive(delivery(event(id)))).code, 'ACCEPTED', 'ids with different lone surrogates are different events')
    await until(async () => (await inbox.outcome(twin))?.state === 'done', 'the second of them to be done')
    t.equal((await inbox.outcome(lonely))?.event?.id, lonely, 'its id round-trips')
  })

  t.test('maxQueueSize counts events backing off before a retry', async (t) => {
    const queueName = `bound-${randomUUID()}`
    const inbox = bullmqInbox({ connection, queueName })
    const webhooks = receiver(inbox, { maxQueueSize: 2, retry: { attempts: 3, minDelayMs: 60_000, maxDelayMs: 60_000 } })
    t.teardown(() => webhooks.close())
    let calls = 0
    webhooks.on('action.completed', () => {
      calls++
      throw new Error('partner down')
    }, { name: 'record' })
    for (const id of ['evt_backoff_1', 'evt_backoff_2']) t.equal((await webhooks.receive(delivery(event(id)))).code, 'ACCEPTED')
    await until(async () => calls === 2 && (await admin.zcard(`bull:${queueName}:delayed`)) === 2, 'both events to fail once and wait for their retry')
    const third = await webhooks.receive(delivery(event('evt_backoff_3')))
    t.equal(third.status, 503, 'two events backing off fill a queue of 2')
    t.equal(third.code, 'QUEUE_FULL')
    t.equal(await inbox.outcome('evt_backoff_3'), undefined, 'nothing of it is recorded')
  })

  t.test('a receiver given a database Redis does not have answers 503 and says why, rather than use database 0', async (t) => {
    const queueName = `wrong-db-${randomUUID()}`
    const webhooks = receiver(bullmqInbox({ connection: { ...connection, db: 16 }, queueName }))
    t.teardown(() => webhooks.close())
    webhooks.on('action.completed', () => {}, { name: 'record' })
    const answer = await webhooks.receive(delivery(event('evt_wrong_db')))
    t.equal(answer.status, 503)
    await until(() => webhooks.health().status === 'degraded', 'health to say why')
    t.match(webhooks.health().reasons, [/^Redis has no database 16 \(it answered "ERR DB index is out of range"\).*: deliveries are answered 503$/])
    t.match(webhooks.log.find((entry) => entry.level === 'error'), { msg: /cannot use the Redis database it was given/ })
    t.same(await admin.keys(`bull:${queueName}:*`), [], 'nothing was written to database 0')
  })

  t.test('inbox CLI on Redis: a database the server does not have is refused; reads write nothing', async (t) => {
    ensureBuilt()
    const queueName = `readonly-${randomUUID()}`
    const inbox = bullmqInbox({ connection, queueName })
    const webhooks = receiver(inbox, { retry: { attempts: 1 } })
    t.teardown(() => webhooks.close())
    webhooks.on('action.completed', () => { throw new Error('no') }, { name: 'record' })
    t.equal((await webhooks.receive(delivery(event('evt_ro')))).code, 'ACCEPTED')
    await until(async () => (await inbox.deadLetters()).length === 1, 'the dead letter')

    const withPassword = url.replace('redis://', 'redis://:S3cretPw-XYZZY@')
    // A process of its own: what ioredis prints straight to stderr is searched for the password too.
    const wrongDb = await runCli(['inbox', 'dead', '--store', `${withPassword}/16`, '--queue', queueName], { timeoutMs: 30_000, spawned: true })
    t.equal(wrongDb.code, 1, 'refused, not read from database 0')
    t.match(wrongDb.stderr, /Redis has no database 16 \(it answered "ERR DB index is out of range"\): "connection.db", the number after the host in redis:\/\/host:port\/DB/)
    t.notMatch(wrongDb.stderr + wrongDb.stdout, /S3cretPw/, 'the password is not echoed')
    t.notMatch(wrongDb.stdout, /evt_ro/, 'database 0\'s dead letters are not shown')

    const keys = async (name: string): Promise<string[]> => (await admin.keys(`bull:${name}:*`)).sort()
    const before = await keys(queueName)
    for (const args of [['stats'], ['dead'], ['show', 'evt_ro']]) {
      const result = await runCli(['inbox', ...args, '--store', url, '--queue', queueName])
      t.equal(result.code, 0, result.stderr)
    }
    t.same(await keys(queueName), before, 'stats, dead and show changed no key')
    const fresh = `never-used-${randomUUID()}`
    t.equal((await runCli(['inbox', 'stats', '--store', url, '--queue', fresh])).code, 0)
    t.same(await keys(fresh), [], 'stats on a queue nobody used creates nothing (no meta key)')
  })

  t.test('two receivers re-driving the same dead events at once: each event re-driven once, no error', async (t) => {
    const queueName = `redrive-race-${randomUUID()}`
    const inbox = bullmqInbox({ connection, queueName })
    const webhooks = receiver(inbox, { retry: { attempts: 1 } })
    t.teardown(() => webhooks.close())
    let broken = true
    const handled: string[] = []
    webhooks.on('action.completed', (e) => {
      if (broken) throw new Error('partner down')
      handled.push(e.id)
    }, { name: 'record' })
    const ids = Array.from({ length: 20 }, (_, index) => `evt_race_${index}`)
    for (const id of ids) t.equal((await webhooks.receive(delivery(event(id)))).code, 'ACCEPTED')
    await until(async () => (await inbox.counts()).dead === ids.length, 'every event to die')
    broken = false
    // A second operator's inbox on the same queue, as a second CLI would open.
    const other = bullmqInbox({ connection, queueName })
    t.teardown(() => other.close(0))
    // Both connected, so that their reads of each job's state come at the same time.
    t.same(await other.counts(), await inbox.counts())
    const results = await Promise.all(ids.map(async (id) => await Promise.all([inbox.redrive(id), other.redrive(id)])))
    t.same(results.map((pair) => pair.filter(Boolean).length), ids.map(() => 1), 'for each event, one redrive says it re-drove it and the other says it was no longer dead')
    await until(() => handled.length >= ids.length, 'the re-driven events to run')
    await sleep(300)
    t.same([...handled].sort(), [...ids].sort(), 'each ran once')
  })

  t.test('two concurrent `inbox redrive --all` both succeed, and each dead event is re-driven once', async (t) => {
    ensureBuilt()
    const queueName = `redrive-${randomUUID()}`
    const inbox = bullmqInbox({ connection, queueName })
    const webhooks = receiver(inbox, { retry: { attempts: 1 } })
    t.teardown(() => webhooks.close())
    let broken = true
    const handled: string[] = []
    webhooks.on('action.completed', (e) => {
      if (broken) throw new Error('partner down')
      handled.push(e.id)
    }, { name: 'record' })
    const ids = Array.from({ length: 40 }, (_, index) => `evt_redrive_${index}`)
    for (const id of ids) t.equal((await webhooks.receive(delivery(event(id)))).code, 'ACCEPTED')
    await until(async () => (await inbox.counts()).dead === ids.length, 'every event to die')
    broken = false
    const store = ['--store', url, '--queue', queueName, '--json']
    const runs = await Promise.all([runCli(['inbox', 'redrive', '--all', '--yes', ...store]), runCli(['inbox', 'redrive', '--all', '--yes', ...store])])
    for (const run of runs) t.equal(run.code, 0, `exit 0 (stderr: ${run.stderr})`)
    const requeued = runs.map((run) => (JSON.parse(run.stdout) as { requeued: number }).requeued)
    t.equal(requeued[0]! + requeued[1]!, ids.length, `between them, every event re-driven exactly once (${requeued.join(' + ')})`)
    await until(() => handled.length >= ids.length, 'the re-driven events to run')
    await sleep(300)
    t.same([...handled].sort(), [...ids].sort(), 'each ran once')
  })
}
