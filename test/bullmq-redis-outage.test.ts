// The BullMQ inbox against a Redis of its own that the test stops, kills and restarts:
// what a delivery in flight at the restart is answered, and what health() says meanwhile.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { createServer, connect, type Socket } from 'node:net'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { bullmqInbox, jobIdFor } from '../src/bullmq/inbox.js'
import { freePort } from './helpers/free-port.js'
import { captureLogs } from './helpers/logs.js'
import { delivery, event, receiver, sleep, until } from './inbox-contract/support.js'

/** A redis-server with no persistence, as the audit ran it: a restart loses everything. */
export interface OwnRedis {
  port: number
  start (): Promise<void>
  /** SIGKILL, and wait until it is gone. */
  kill (): Promise<void>
}

async function ownRedis (t: Test): Promise<OwnRedis> {
  const port = await freePort()
  let server: ChildProcess | undefined
  const kill = async (): Promise<void> => {
    const running = server
    server = undefined
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return
    const exited = new Promise((resolve) => running.once('exit', resolve))
    running.kill('SIGKILL')
    await exited
  }
  const start = async (): Promise<void> => {
    server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
    const started = server
    process.once('exit', () => { started.kill('SIGKILL') })
    const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    probe.on('error', () => {})
    try {
      await until(async () => {
        try {
          if (probe.status !== 'ready') await probe.connect()
          return await probe.ping() === 'PONG'
        } catch {
          probe.disconnect()
          return false
        }
      }, 'the redis-server to answer PING')
    } finally {
      probe.disconnect()
    }
  }
  t.teardown(kill)
  await start()
  return { port, start, kill }
}

const hasRedis = spawnSync('redis-server', ['--version']).status === 0
if (!hasRedis && (process.env.CI === 'true' || process.env.CI === '1')) throw new Error('these tests need redis-server installed')

/** The first whole command (a RESP array of bulk strings) at the start of `bytes`, or undefined while it is not all there. */
function nextCommand (bytes: Buffer): Buffer | undefined {
  const lineEnd = (from: number): number => bytes.indexOf('\r\n', from)
  let end = lineEnd(0)
  if (end === -1) return undefined
  const count = Number(bytes.subarray(1, end).toString('latin1'))
  let at = end + 2
  for (let index = 0; index < count; index++) {
    end = lineEnd(at)
    if (end === -1) return undefined
    at = end + 2 + Number(bytes.subarray(at + 1, end).toString('latin1')) + 2
    if (at > bytes.length) return undefined
  }
  return bytes.subarray(0, at)
}

/**
 * Sends one delivery of `id` through a proxy that swallows the first command
 * `inFlight` picks out and has Redis killed and restarted (empty) meanwhile:
 * that command was in flight when Redis died, and ioredis re-sends it to the
 * new Redis. Then retries as the platform does, until a 2xx.
 */
async function restartWhileInFlight (t: Test, id: string, inFlight: (command: string) => boolean): Promise<string[]> {
  const redis = await ownRedis(t)
  let armed = false
  let swallowed = false
  const sockets = new Set<Socket>()
  const proxy = createServer((client) => {
    const upstream = connect(redis.port, '127.0.0.1')
    sockets.add(client).add(upstream)
    // Commands are looked at one by one: the receiver writes several in one write
    // (the add and its mark always together), and what comes before the picked
    // one reaches Redis.
    let pending = Buffer.alloc(0)
    // Once a command is lost, so is everything the client sends after it on this
    // connection, as on a real one: a later command answered by the old Redis
    // would have its reply matched to the lost one (a worker's key read, say).
    let lost = false
    client.on('data', (chunk) => {
      if (lost) return
      pending = Buffer.concat([pending, chunk])
      let command: Buffer | undefined
      while ((command = nextCommand(pending)) !== undefined) {
        pending = pending.subarray(command.length)
        if (armed && inFlight(command.toString('latin1'))) {
          armed = false
          swallowed = true
          lost = true
          // It and what follows it in this write are lost with the old Redis. Redis
          // dies a moment later, once it has answered what came before (the add
          // that travels with a mark), so that only the lost command is sent again.
          pending = Buffer.alloc(0)
          setTimeout(() => { void redis.kill().then(async () => { await redis.start() }) }, 200)
          return
        }
        upstream.write(command)
      }
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
  const webhooks = receiver(bullmqInbox({ connection: { host: '127.0.0.1', port }, queueName: `restart-${randomUUID()}`, acceptTimeoutMs: 1_500 }))
  t.teardown(() => webhooks.close())
  const handled: string[] = []
  webhooks.on('action.completed', (e) => { handled.push(e.id) }, { name: 'record' })
  t.equal((await webhooks.receive(delivery(event('evt_warm')))).code, 'ACCEPTED')
  await until(() => handled.includes('evt_warm'), 'the warm-up event')

  armed = true
  const first = await webhooks.receive(delivery(event(id)))
  t.ok(swallowed, 'the command was in flight when Redis died')
  const answers = [first.code]
  // Redis is back, empty; ioredis reconnects and re-sends the command it had in flight.
  await until(() => webhooks.health().status === 'ok', 'the inbox to reach the restarted Redis', 30_000)
  await sleep(1_000)

  // The platform retries what got 503, until it is answered 2xx.
  if (first.status >= 300) {
    await until(async () => {
      const answer = await webhooks.receive(delivery(event(id)))
      answers.push(answer.code)
      return answer.status < 300
    }, 'the retry to be answered 2xx', 30_000)
  }
  // Answered 2xx (accepted, or a duplicate of what was queued): it must run. Once,
  // under load, an event accepted as Redis came back ran more than 15 s later (not
  // explained; a worker whose connection failed waits BullMQ's runRetryDelay, 15 s,
  // before it fetches again): the wait allows for it.
  await until(() => handled.includes(id), `the event answered ${answers.join(', ')} to run`, 40_000)
  const after = `evt_after_${randomUUID()}`
  t.equal((await webhooks.receive(delivery(event(after)))).code, 'ACCEPTED')
  await until(() => handled.includes(after), 'an event accepted after the restart to run')
  await sleep(300)
  t.same(handled.filter((handledId) => handledId === id), [id], 'handled once')
  return answers
}

const skip = hasRedis ? false : 'redis-server is not installed'

t.test('a seen-mark in flight when Redis restarts (persistence off) marks nothing: the retry is accepted and runs', { skip }, async (t) => {
  const id = 'evt_mark_in_flight'
  const seenKey = `sir-seen:${jobIdFor(id)}`
  // The mark is the one command that names both the key and the pending index.
  // Its add, in the same write, reaches the old Redis and is lost with it.
  const answers = await restartWhileInFlight(t, id, (command) => command.includes(seenKey) && command.includes('sir-pending'))
  t.equal(answers[0], 'INBOX_UNAVAILABLE', 'the delivery whose mark was in flight got 503')
  t.same(answers.filter((code) => code !== 'INBOX_UNAVAILABLE'), ['ACCEPTED'], 'its retry is accepted: the id was not marked seen without its job')
})

t.test('a job add in flight when Redis restarts (persistence off): answered 2xx, at once or on a retry, and run once', { skip }, async (t) => {
  const id = 'evt_add_in_flight'
  // The add is the one command that carries the event itself: its body, as a JSON
  // string inside the job's data (other commands name the job id, which encodes the id).
  const answers = await restartWhileInFlight(t, id, (command) => command.includes(`\\"id\\":\\"${id}\\"`))
  t.ok(answers.includes('ACCEPTED'), `one delivery was accepted (${answers.join(', ')})`)
})

t.test('health() is degraded while Redis is down and deliveries get 503, and ok again once it is back', { skip }, async (t) => {
  const redis = await ownRedis(t)
  const webhooks = receiver(bullmqInbox({ connection: { host: '127.0.0.1', port: redis.port }, queueName: `health-${randomUUID()}`, acceptTimeoutMs: 500 }))
  t.teardown(() => webhooks.close())
  const handled: string[] = []
  webhooks.on('action.completed', (e) => { handled.push(e.id) }, { name: 'record' })
  t.equal((await webhooks.receive(delivery(event('evt_before')))).code, 'ACCEPTED')
  await until(() => webhooks.health().status === 'ok', 'the inbox to report ok')
  t.same(webhooks.health(), { status: 'ok', reasons: [] })

  await redis.kill()
  await until(() => webhooks.health().status === 'degraded', 'health to notice Redis is gone')
  t.match(webhooks.health(), { status: 'degraded', reasons: [/cannot reach Redis .*deliveries are answered 503 until it is back/] })
  const during = await webhooks.receive(delivery(event('evt_during')))
  t.equal(during.status, 503, 'while health says degraded, deliveries get 503')

  await redis.start()
  await until(() => webhooks.health().status === 'ok', 'health to be ok again', 30_000)
  t.same(webhooks.health(), { status: 'ok', reasons: [] })
  t.equal((await webhooks.receive(delivery(event('evt_during')))).code, 'ACCEPTED', 'the retry once Redis is back is accepted')
  await until(() => handled.includes('evt_during'), 'the event to run once Redis is back')
})

t.test('a lost lock is logged as one, not as a lost Redis', { skip }, async (t) => {
  const redis = await ownRedis(t)
  const webhooks = receiver(bullmqInbox({ connection: { host: '127.0.0.1', port: redis.port }, queueName: `lock-${randomUUID()}`, lockDurationMs: 200, stalledIntervalMs: 5_000 }))
  t.teardown(() => webhooks.close())
  let runs = 0
  webhooks.on('action.completed', () => {
    runs++
    // Blocks the event loop past the lock: no renewal can be sent meanwhile.
    if (runs === 1) {
      const until = Date.now() + 1_000
      while (Date.now() < until) { /* a handler that blocks */ }
    }
  }, { name: 'record' })
  t.equal((await webhooks.receive(delivery(event('evt_blocks')))).code, 'ACCEPTED')
  const aboutLock = (entry: { fields: Record<string, unknown> }): boolean => /lock/i.test(String((entry.fields.err as Error | undefined)?.message))
  await until(() => webhooks.log.some(aboutLock), 'BullMQ to report the lost lock')
  const line = webhooks.log.find(aboutLock)
  t.match(line, { level: 'warn', msg: /lock was lost: its handler ran, or blocked the event loop, past lockDurationMs; the job may run again in another receiver/ })
  t.same(webhooks.log.filter((entry) => /lost Redis/.test(entry.msg ?? '')), [], 'Redis answered throughout: nothing says it was lost')
  t.same(webhooks.health(), { status: 'ok', reasons: [] })
})

t.test('no part of an event reaches the logs on any failure path: Redis down, Redis refusing the write, handler failures, dead letters', { skip }, async (t) => {
  const MARKER = 'MARKER-d41d8cd9-never-logged'
  const marked = (id: string): Record<string, unknown> => ({ ...event(id), data: { note: MARKER, actionId: 'act_1' } })
  const redis = await ownRedis(t)
  const logs = captureLogs('debug')
  const webhooks = receiver(bullmqInbox({ connection: { host: '127.0.0.1', port: redis.port }, queueName: `marker-${randomUUID()}`, acceptTimeoutMs: 1_000 }), { logger: logs.logger, retry: { attempts: 2, minDelayMs: 5, maxDelayMs: 10 } })
  t.teardown(() => webhooks.close())
  webhooks.on('action.completed', (e) => { throw new Error(`partner refused ${e.id}`) }, { name: 'record' })
  const dead: string[] = []
  webhooks.onDeadLetter((entry) => { dead.push(entry.event.id) })

  // A handler that fails, is retried and is dead-lettered.
  t.equal((await webhooks.receive(delivery(marked('evt_fails')))).code, 'ACCEPTED')
  await until(() => dead.includes('evt_fails'), 'the dead letter')
  // A duplicate whose body differs.
  t.equal((await webhooks.receive(delivery({ ...marked('evt_fails'), extra: MARKER }))).code, 'DUPLICATE')

  // Redis refuses the write (out of memory): its error names the command and its arguments.
  const admin = new Redis({ host: '127.0.0.1', port: redis.port })
  t.teardown(() => { admin.disconnect() })
  await admin.config('SET', 'maxmemory-policy', 'noeviction')
  await admin.config('SET', 'maxmemory', '1')
  t.equal((await webhooks.receive(delivery(marked('evt_oom')))).status, 503)
  t.ok(logs.entries().some((entry) => /could not record the event/.test(String(entry.msg)) && /OOM/.test(JSON.stringify(entry))), 'the refusal was logged')
  await admin.config('SET', 'maxmemory', '0')

  // Redis is gone.
  await redis.kill()
  t.equal((await webhooks.receive(delivery(marked('evt_down')))).status, 503)
  await redis.start()
  await until(() => webhooks.health().status === 'ok', 'Redis to be back', 30_000)

  t.ok(logs.entries().length > 5, `${logs.entries().length} lines were logged`)
  t.same(logs.text().split('\n').filter((line) => line.includes(MARKER)), [], 'no log line holds the marker')
})
