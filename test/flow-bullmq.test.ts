import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { bullmqInbox } from '../src/bullmq/inbox.js'
import { redisForTests } from './helpers/redis.js'
import { runFlowScenarios } from './flow/scenarios.js'
import { delivery, event, receiver, sleep, until } from './inbox-contract/support.js'

const redis = await redisForTests(t)
if (redis.url === undefined) {
  t.plan(0, `BullMQ flow control skipped: no Redis (${redis.reason})`)
} else {
  const { connection } = redis
  // A queue of its own per test: tests share one Redis and must not see each other's jobs.
  runFlowScenarios(t, { name: 'bullmq', inbox: () => bullmqInbox({ connection, queueName: `flow-${randomUUID()}` }) })
}

if (redis.url !== undefined) {
  const { connection } = redis

  /** Two receivers on one queue, as two machines behind a load balancer. */
  function pair (t: Test, options: Parameters<typeof receiver>[1] = {}, queueName = `flow-pair-${randomUUID()}`): [ReturnType<typeof receiver>, ReturnType<typeof receiver>] {
    const a = receiver(bullmqInbox({ connection, queueName }), options)
    const b = receiver(bullmqInbox({ connection, queueName }), options)
    t.teardown(async () => { await Promise.all([a.close(), b.close()]) })
    return [a, b]
  }

  t.test('bullmq: two receivers on one Redis share one rate limit', async (t) => {
    // One job at a time each, and a run (260 ms) a little longer than the 250 ms
    // between tokens: one receiver cannot keep up alone, so both run some, and a
    // bucket per receiver would let through about 7/s, near twice the limit.
    const [a, b] = pair(t, { concurrency: 1 })
    const runs: Array<{ by: string, at: number }> = []
    for (const [by, webhooks] of [['a', a], ['b', b]] as const) {
      webhooks.on('action.completed', async function callPartner () {
        runs.push({ by, at: Date.now() })
        await sleep(260)
      }, { name: 'callPartner', rate: { perSecond: 4, burst: 1 } })
    }
    for (let index = 0; index < 17; index++) {
      t.equal((await (index % 2 === 0 ? a : b).receive(delivery(event(`evt_shared_rate_${index}`)))).status, 200)
    }
    await until(() => runs.length === 17, 'every event to run', 30_000)
    const rate = (runs.length - 1) / (((runs.at(-1)?.at ?? 0) - (runs[0]?.at ?? 0)) / 1000)
    // Wide bounds for a loaded machine: 0.4x to 1.6x of the limit.
    t.ok(rate >= 1.6 && rate <= 6.4, `measured ${rate.toFixed(2)} runs/s over both receivers for one limit of 4/s`)
    t.ok(runs.some((run) => run.by === 'a') && runs.some((run) => run.by === 'b'), `both receivers ran some (${runs.filter((run) => run.by === 'a').length} on a)`)
  })

  t.test('bullmq: two receivers share a rate of 20/s', async (t) => {
    // Four jobs at a time each and 10 ms a run: each receiver alone could run far
    // above 20/s, so with a bucket per receiver the pair would run about 40/s.
    const [a, b] = pair(t, { concurrency: 4 })
    const runs: Array<{ by: string, at: number }> = []
    for (const [by, webhooks] of [['a', a], ['b', b]] as const) {
      webhooks.on('action.completed', async function callPartner () {
        runs.push({ by, at: Date.now() })
        await sleep(10)
      }, { name: 'callPartner', rate: { perSecond: 20, burst: 1 } })
    }
    await Promise.all(Array.from({ length: 61 }, async (_, index) => {
      t.equal((await (index % 2 === 0 ? a : b).receive(delivery(event(`evt_rate20_${index}`)))).status, 200)
    }))
    await until(() => runs.length === 61, 'every event to run', 60_000)
    runs.sort((x, y) => x.at - y.at)
    const rate = (runs.length - 1) / (((runs.at(-1)?.at ?? 0) - (runs[0]?.at ?? 0)) / 1000)
    // A load can only slow the runs (a late reservation is dropped: see the lag
    // test), so the most in any second tells one shared bucket (20, and a token
    // or two of jitter) from two (up to 40), however loaded the machine.
    const inAnySecond = Math.max(...runs.map(({ at: start }) => runs.filter(({ at }) => at >= start && at < start + 1000).length))
    t.ok(inAnySecond <= 24, `at most 24 runs in any second over both receivers (got ${inAnySecond})`)
    t.ok(rate >= 5, `measured ${rate.toFixed(1)} runs/s over both receivers for one limit of 20/s`)
    t.ok(runs.some((run) => run.by === 'a') && runs.some((run) => run.by === 'b'), `both receivers ran some (${runs.filter((run) => run.by === 'a').length} on a)`)
  })

  t.test('bullmq: pause() on one receiver pauses every receiver on the Redis; resume() on another drains', async (t) => {
    const queueName = `flow-pair-${randomUUID()}`
    const [a, b] = pair(t, {}, queueName)
    const ran: string[] = []
    for (const webhooks of [a, b]) webhooks.on('action.completed', async function creditTokens (event) { ran.push(event.id) }, { name: 'creditTokens' })
    await a.pause()
    await until(() => b.health().status === 'paused', 'the other receiver to see the pause', 5_000)
    t.match(b.health(), { status: 'paused', reasons: [/every handler is paused/] })
    for (let index = 0; index < 6; index++) {
      t.equal((await (index % 2 === 0 ? a : b).receive(delivery(event(`evt_shared_pause_${index}`)))).status, 200, 'answered 2xx while paused')
    }
    // A receiver started now (a deploy's new instance) reads the pause, kept in Redis, before it runs anything.
    const late = receiver(bullmqInbox({ connection, queueName }))
    t.teardown(() => late.close())
    late.on('action.completed', async function creditTokens (event) { ran.push(event.id) }, { name: 'creditTokens' })
    await until(() => late.health().status === 'paused', 'the late receiver to read the pause', 10_000)
    await sleep(1_200)
    t.same(ran, [], 'nothing ran on any receiver, the one started while paused included')
    t.equal(late.health().status, 'paused')
    t.equal((await b.inbox.counts?.())?.pending, 6, 'stored, waiting')
    await until(() => (b.stats().flow.oldestWaitingMs ?? 0) >= 1_000, 'the age of the oldest waiting event in stats()', 5_000)
    await b.resume()
    await until(() => ran.length === 6, 'resume() on the other receiver to drain every event', 15_000)
    await until(() => a.health().status === 'ok', 'the first receiver to see the resume', 5_000)
    await until(() => late.health().status === 'ok', 'the late receiver to see the resume', 5_000)
    await until(() => b.stats().flow.oldestWaitingMs === undefined, 'no waiting event left in stats()', 5_000)
    // Per handler, too: paused by name on b, not run on a.
    await b.pause('creditTokens')
    await until(() => a.health().status === 'paused' && late.health().status === 'paused', 'the handler pause to reach the other receivers', 5_000)
    await a.receive(delivery(event('evt_shared_pause_named')))
    await sleep(1_000)
    t.notOk(ran.includes('evt_shared_pause_named'), 'the handler paused by name ran nowhere')
    await a.resume('creditTokens')
    await until(() => ran.includes('evt_shared_pause_named'), 'the event to run once resumed', 15_000)
  })
}
