import { randomUUID } from 'node:crypto'
import { createServer, connect, type Socket } from 'node:net'
import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import t from 'tap'
import { bullmqInbox, jobIdFor } from '../src/bullmq/inbox.js'
import { kill, startReceiver } from './fixtures/spawn-receiver.js'
import { redisForTests } from './helpers/redis.js'
import { silentServer } from './helpers/silent-server.js'
import { SECRET, delivery, event, post, receiver, sleep, until } from './inbox-contract/support.js'

t.test('options are checked, and the message names the option', async (t) => {
  const connection = { host: '127.0.0.1', port: 1 }
  t.throws(() => bullmqInbox({ connection: undefined as never }), { message: /sir-webhooks: "connection" must be/ })
  t.throws(() => bullmqInbox({ connection, queueName: 'a:b' }), { message: /"queueName" must be a non-empty string without ":"/ })
  t.throws(() => bullmqInbox({ connection, dedupeSeconds: 3600 }), { message: 'sir-webhooks: "dedupeSeconds" must be an integer of at least 604800, got 3600' })
  t.throws(() => bullmqInbox({ connection, acceptTimeoutMs: 0 }), { message: /"acceptTimeoutMs" must be a positive integer/ })
  t.throws(() => bullmqInbox({ connection, lockDuration: 10_000 } as never), { name: 'WebhookOptionsError', message: 'sir-webhooks: bullmqInbox(options): unknown option "lockDuration"; did you mean "lockDurationMs"?' })
  t.throws(() => bullmqInbox({ connection, stalledInterval: 5_000 } as never), { message: /unknown option "stalledInterval"; did you mean "stalledIntervalMs"\?/ })
})

t.test('event ids become valid BullMQ job ids', async (t) => {
  t.equal(jobIdFor('evt_abc123'), jobIdFor('evt_abc123'))
  t.notMatch(jobIdFor('a:b:c:d'), /:/)
  t.notMatch(jobIdFor('12345'), /^\d+$/)
  t.match(jobIdFor('x'.repeat(1000)), /^h[0-9a-f]{64}$/)
})

t.test('a Redis that cannot be reached gets 503 within acceptTimeoutMs, and close() still returns', async (t) => {
  const webhooks = receiver(bullmqInbox({ connection: { host: '127.0.0.1', port: 1 }, acceptTimeoutMs: 200 }), { retryAfterSeconds: 9 })
  const startedAt = Date.now()
  const result = await webhooks.receive(delivery(event('evt_no_redis')))
  t.equal(result.status, 503)
  t.equal(result.code, 'INBOX_UNAVAILABLE')
  t.equal(result.headers['retry-after'], '9')
  t.ok(Date.now() - startedAt < 1_000, `answered within ${Date.now() - startedAt} ms for acceptTimeoutMs 200`)
  await webhooks.close()
})

t.test('loaded() resolves once bullmq is imported, without waiting for a Redis that never answers', async (t) => {
  const port = await silentServer(t)
  const inbox = bullmqInbox({ connection: { host: '127.0.0.1', port }, acceptTimeoutMs: 200 })
  const webhooks = receiver(inbox)
  t.teardown(() => webhooks.close())
  // The server never answers, so had loaded() waited for Redis it would not resolve.
  t.equal(await webhooks.loaded(), undefined, 'resolves, does not reject')
  t.equal((await webhooks.receive(delivery(event('evt_loaded_no_redis')))).status, 503, 'Redis is still silent')
})

const redis = await redisForTests(t)
if (redis.url === undefined) {
  t.comment(`BullMQ tests that need Redis skipped: ${redis.reason}`)
} else {
  const { url, connection } = redis
  const admin = new Redis(url)
  t.teardown(() => { admin.disconnect() })

  t.test('dedupe outlives the job: a redelivery after the job was purged is still a duplicate', async (t) => {
    const queueName = `dedupe-${randomUUID()}`
    const inbox = bullmqInbox({ connection, queueName, retentionSeconds: 1 })
    const webhooks = receiver(inbox)
    t.teardown(() => webhooks.close())
    let calls = 0
    webhooks.on('action.completed', () => { calls++ }, { name: 'record' })
    t.equal((await webhooks.receive(delivery(event('evt_long_ago')))).code, 'ACCEPTED')
    await until(async () => (await inbox.outcome('evt_long_ago'))?.state === 'done', 'the job to complete')
    const seenKey = `bull:${queueName}:sir-seen:${jobIdFor('evt_long_ago')}`
    t.ok(await admin.ttl(seenKey) >= 7 * 24 * 3600 - 60, 'the id is remembered for at least 7 days')
    t.same(await inbox.purge(), { done: 0, dead: 0 }, 'nothing is older than retentionSeconds yet')
    await sleep(1_100)
    t.same(await inbox.purge(), { done: 1, dead: 0 })
    t.equal(await inbox.outcome('evt_long_ago'), undefined, 'the job and its record are gone')
    const again = await webhooks.receive(delivery(event('evt_long_ago')))
    t.equal(again.status, 200)
    t.equal(again.code, 'DUPLICATE')
    await sleep(200)
    t.equal(calls, 1)
  })

  t.test('a Redis slower than acceptTimeoutMs gets 503; the retry once Redis is back is handled once', async (t) => {
    const webhooks = receiver(bullmqInbox({ connection, queueName: `slow-${randomUUID()}`, acceptTimeoutMs: 200 }), { retryAfterSeconds: 8 })
    t.teardown(() => webhooks.close())
    let calls = 0
    webhooks.on('action.completed', () => { calls++ }, { name: 'record' })
    // Warm up, so the pause below is what the accept waits for.
    await webhooks.receive(delivery(event('evt_warm')))
    await until(() => calls === 1, 'the warm-up event')
    // Short: other test files may share this Redis in CI.
    await admin.call('CLIENT', 'PAUSE', '600', 'WRITE')
    const startedAt = Date.now()
    const slow = await webhooks.receive(delivery(event('evt_slow')))
    const tookMs = Date.now() - startedAt
    t.equal(slow.status, 503)
    t.equal(slow.code, 'INBOX_UNAVAILABLE')
    t.equal(slow.headers['retry-after'], '8')
    t.ok(tookMs >= 190 && tookMs < 1_000, `answered at the deadline: ${tookMs} ms for acceptTimeoutMs 200, Redis paused 600 ms`)
    await admin.call('CLIENT', 'UNPAUSE')
    await sleep(300)
    t.equal(await webhooks.inbox.outcome?.('evt_slow'), undefined, 'the late Redis answer recorded nothing')
    const retried = await webhooks.receive(delivery(event('evt_slow')))
    t.equal(retried.code, 'ACCEPTED', 'the retry is accepted, not taken for a duplicate')
    await until(() => calls === 2, 'the handler')
    await sleep(200)
    t.equal(calls, 2, 'handled once')
  })

  t.test('a delivery refused while its job was being added leaves nothing to run; the retry is handled once', async (t) => {
    // A proxy in front of Redis that, once armed, holds back what the receiver
    // sends that names the event: the job add, whose arguments carry the event.
    // The reads before it (the dedupe key and the queue counts) go through, so the
    // deadline passes while the add is in flight.
    let armed = false
    const holdMs = 600
    const sockets = new Set<Socket>()
    const proxy = createServer((client) => {
      const upstream = connect(connection.port, connection.host)
      sockets.add(client).add(upstream)
      // Held chunks, and every later one behind them, go on in order from one
      // timer: a timer per chunk could send a later one first (ioredis would then
      // match replies to the wrong commands).
      let held: Buffer[] | undefined
      client.on('data', (chunk) => {
        if (armed && chunk.includes('evt_slow')) {
          armed = false
          held = []
          setTimeout(() => {
            for (const waiting of held ?? []) upstream.write(waiting)
            held = undefined
          }, holdMs)
        }
        if (held !== undefined) held.push(chunk)
        else upstream.write(chunk)
      })
      upstream.on('data', (chunk) => { client.write(chunk) })
      client.on('error', () => { upstream.destroy() })
      upstream.on('error', () => { client.destroy() })
      client.on('close', () => { upstream.destroy() })
      upstream.on('close', () => { client.destroy() })
    })
    await new Promise<void>((resolve) => { proxy.listen(0, '127.0.0.1', resolve) })
    t.teardown(() => {
      for (const socket of sockets) socket.destroy()
      proxy.close()
    })
    const address = proxy.address()
    const port = typeof address === 'object' && address !== null ? address.port : 0
    const webhooks = receiver(bullmqInbox({ connection: { host: '127.0.0.1', port }, queueName: `add-race-${randomUUID()}`, acceptTimeoutMs: 200 }))
    t.teardown(() => webhooks.close())
    let calls = 0
    webhooks.on('action.completed', () => { calls++ }, { name: 'record' })
    await webhooks.receive(delivery(event('evt_warm')))
    await until(() => calls === 1, 'the warm-up event')
    armed = true
    const slow = await webhooks.receive(delivery(event('evt_slow')))
    t.equal(slow.status, 503)
    t.notOk(armed, 'the add was the command held back')
    await sleep(holdMs + 300)
    t.equal(calls, 1, 'the job added after the 503 did not run')
    t.equal(await webhooks.inbox.outcome?.('evt_slow'), undefined, 'and is not reported as recorded')
    const retried = await webhooks.receive(delivery(event('evt_slow')))
    t.equal(retried.code, 'ACCEPTED', 'the retry is accepted, not taken for a duplicate')
    await until(() => calls === 2, 'the handler')
    await sleep(200)
    t.equal(calls, 2, 'handled once')
  })

  t.test('a job taken before its dedupe key is set is held, not run; the retry sets the key and it runs at once, as its first attempt', async (t) => {
    const queueName = `held-${randomUUID()}`
    const webhooks = receiver(bullmqInbox({ connection, queueName }))
    t.teardown(() => webhooks.close())
    const attempts: number[] = []
    webhooks.on('action.completed', (_event, context) => { attempts.push(context.attempt) }, { name: 'record' })
    // What a delivery refused mid-add leaves: a job ready to run, and no key.
    const queue = new Queue(queueName, { connection })
    t.teardown(() => queue.close())
    const job = await queue.add('action.completed', { event: event('evt_held'), receivedAt: Date.now() }, { jobId: jobIdFor('evt_held'), attempts: 3 })
    await until(async () => (await queue.getJob(jobIdFor('evt_held')))?.attemptsStarted === 1, 'the worker to pick the job up')
    // A second of key reads after the pick-up: read the state once it has settled.
    await until(async () => (await job.getState()) !== 'active', 'the worker to let go of the job')
    t.equal(await job.getState(), 'delayed', 'it went back to being held')
    t.same(attempts, [], 'no handler ran')
    t.equal(await webhooks.inbox.outcome?.('evt_held'), undefined, 'and it is not reported as recorded')
    // The sender's retry sets the key and ends the hold (60 s): now it runs.
    const retriedAt = Date.now()
    t.equal((await webhooks.receive(delivery(event('evt_held')))).code, 'ACCEPTED')
    await until(() => attempts.length === 1, 'the handler')
    t.ok(Date.now() - retriedAt < 30_000, 'promoted, not left to its hold')
    t.same(attempts, [1], 'the take that found no key was not an attempt')
    await until(async () => (await webhooks.inbox.outcome?.('evt_held'))?.state === 'done', 'the outcome')
    t.match(await webhooks.inbox.outcome?.('evt_held'), { state: 'done', attempts: 1 })
  })

  t.test('a refused delivery\'s job, accepted on the retry, waits in the pending index by its own receivedAt', async (t) => {
    const queueName = `retried-${randomUUID()}`
    const webhooks = receiver(bullmqInbox({ connection, queueName }))
    t.teardown(() => webhooks.close())
    const ran: string[] = []
    webhooks.on('action.completed', (evt) => { ran.push(evt.id) }, { name: 'record' })
    await webhooks.pause()
    // What a refused delivery leaves: its job, with its receivedAt, and no key.
    const queue = new Queue(queueName, { connection })
    t.teardown(() => queue.close())
    const firstAt = Date.now() - 5_000
    await queue.add('action.completed', { event: event('evt_retried'), receivedAt: firstAt }, { jobId: jobIdFor('evt_retried'), attempts: 3 })
    // The retry's add leaves that job as it is; its mark enters it in the index.
    t.equal((await webhooks.receive(delivery(event('evt_retried')))).code, 'ACCEPTED')
    const pending = await webhooks.inbox.events?.({ state: 'pending' }) ?? []
    t.same(pending.map(({ id, receivedAt }) => [id, receivedAt.getTime()]), [['evt_retried', firstAt]], 'listed pending, by the receivedAt its job keeps')
    t.match(await webhooks.inbox.outcome?.('evt_retried'), { state: 'pending' })
    // The index is read every half second: its first answer since the mark.
    await until(() => webhooks.stats().flow.oldestWaitingMs !== undefined, 'stats() to read the index')
    t.ok((webhooks.stats().flow.oldestWaitingMs ?? 0) >= 4_500, 'stats() counts its age from its first receipt')
    await webhooks.resume()
    await until(() => ran.length === 1, 'the handler, once resumed')
    t.same(ran, ['evt_retried'])
  })

  t.test('an accepted event whose key expired before any worker took it still runs', async (t) => {
    const queueName = `expired-${randomUUID()}`
    const queue = new Queue(queueName, { connection })
    t.teardown(() => queue.close())
    // What an accept leaves once its key has expired (dedupeSeconds) with no handler process up:
    // the job, and its entry in the pending index, which the mark wrote with the key.
    const receivedAt = Date.now() - 8 * 24 * 3600 * 1000
    await queue.add('action.completed', { event: event('evt_expired_key'), receivedAt }, { jobId: jobIdFor('evt_expired_key') })
    await admin.zadd(`bull:${queueName}:sir-pending`, receivedAt, jobIdFor('evt_expired_key'))
    // outcome() judges it as a worker does: accepted, pending. A receiver with no handler runs no worker.
    const reader = receiver(bullmqInbox({ connection, queueName }))
    t.teardown(() => reader.close())
    t.match(await reader.inbox.outcome?.('evt_expired_key'), { state: 'pending', attempts: 0 }, 'pending to outcome(), not "not recorded"')
    const webhooks = receiver(bullmqInbox({ connection, queueName }))
    t.teardown(() => webhooks.close())
    let calls = 0
    webhooks.on('action.completed', () => { calls++ }, { name: 'record' })
    await until(() => calls === 1, 'the handler')
    await until(async () => (await webhooks.inbox.outcome?.('evt_expired_key'))?.state === 'done', 'the outcome')
    // An entry left by an earlier job of a reused id (its removal lost) does not
    // count for a new job of that id whose delivery was refused: that one is held.
    const reused = await queue.add('action.completed', { event: event('evt_reused'), receivedAt: Date.now() }, { jobId: jobIdFor('evt_reused') })
    await admin.zadd(`bull:${queueName}:sir-pending`, Date.now() - 60_000, jobIdFor('evt_reused'))
    await until(async () => (await queue.getJob(jobIdFor('evt_reused')))?.attemptsStarted === 1, 'the worker to pick the job up')
    await until(async () => (await reused.getState()) !== 'active', 'the worker to let go of the job')
    t.equal(await reused.getState(), 'delayed', 'held, not run')
    t.equal(calls, 1, 'no handler ran it')
    t.equal(await webhooks.inbox.outcome?.('evt_reused'), undefined, 'and outcome() calls it not recorded, as the worker did')
    const pending = await webhooks.inbox.events?.({ state: 'pending' }) ?? []
    t.notOk(pending.some(({ id }) => id === 'evt_reused'), 'nor does events() list it as pending')
  })

  t.test('a job recovered from crashed receivers more than maxStalledCount times is dead-lettered and reported', async (t) => {
    const queueName = `stalled-${randomUUID()}`
    const doomed = await startReceiver({ SIR_STORE: 'bullmq', SIR_REDIS_URL: url, SIR_QUEUE: queueName, SIR_LEASE_MS: '500', SIR_SECRET: SECRET, SIR_HANDLED: '/dev/null', SIR_HANDLER_MS: '60000' })
    t.teardown(() => kill(doomed, 'SIGKILL'))
    t.equal(await post(doomed.url, event('evt_stalls')), 200)
    await until(() => doomed.started.includes('evt_stalls'), 'the handler to start')
    await kill(doomed, 'SIGKILL')
    const webhooks = receiver(bullmqInbox({ connection, queueName, stalledIntervalMs: 200, maxStalledCount: 0 }))
    t.teardown(() => webhooks.close())
    let calls = 0
    const dead: unknown[] = []
    webhooks.on('action.completed', () => { calls++ }, { name: 'record' })
    webhooks.onDeadLetter((entry) => { dead.push(entry) })
    await until(() => dead.length === 1, 'the dead letter')
    t.equal(calls, 0, 'the job is not run again')
    t.match(dead[0], { reason: 'handler_failed', event: { id: 'evt_stalls' }, error: { message: /stalled/ } })
    t.match(await webhooks.inbox.outcome?.('evt_stalls'), { state: 'dead', lastError: /stalled/ })
    const jobKey = `bull:${queueName}:${jobIdFor('evt_stalls')}`
    t.equal(await admin.hget(jobKey, 'stc'), '1', 'BullMQ counted the stall on the job')
    t.equal(await webhooks.inbox.redrive?.('evt_stalls'), true)
    t.equal(await admin.hget(jobKey, 'stc'), null, 'a re-driven job starts with no stalls counted, or its next stall would kill it at once')
    await until(() => calls === 1, 'the re-driven event to run')
  })
}
