// A paced handler on BullMQ after its receiver lagged: jobs whose reserved tokens
// fell due during the lag must not all run at once when it ends.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { bullmqInbox } from '../src/bullmq/inbox.js'
import { redisForTests } from './helpers/redis.js'
import { delivery, event, receiver, until } from './inbox-contract/support.js'

const redis = await redisForTests(t)
if (redis.url === undefined) {
  t.plan(0, `BullMQ pacing after a lag skipped: no Redis (${redis.reason})`)
} else {
  const { connection } = redis

  t.test('rate 5/s, burst 1: a 900 ms stall does not let the reserved runs out in a bunch', async (t) => {
    const webhooks = receiver(bullmqInbox({ connection, queueName: `flow-lag-${randomUUID()}` }), { concurrency: 10 })
    t.teardown(() => webhooks.close())
    const runs: number[] = []
    webhooks.on('action.completed', async function callPartner () { runs.push(Date.now()) }, { name: 'callPartner', rate: { perSecond: 5, burst: 1 } })
    for (let index = 0; index < 30; index++) t.equal((await webhooks.receive(delivery(event(`evt_lag_${index}_${randomUUID()}`)))).status, 200)
    await until(() => runs.length >= 5, 'a few paced runs', 20_000)
    // A stalled event loop (a GC pause, a busy handler): the reserved tokens of
    // about five jobs fall due meanwhile.
    const end = Date.now() + 900
    while (Date.now() < end) { /* busy */ }
    await until(() => runs.length === 30, 'every run', 60_000)
    const inAny = (windowMs: number): number => Math.max(...runs.map((start) => runs.filter((at) => at >= start && at < start + windowMs).length))
    // Tokens 200 ms apart: two in a 200 ms window, three with a timer's jitter.
    // Honouring every reservation up to a second late ran about five at once.
    t.ok(inAny(200) <= 3, `at most 3 runs in any 200 ms (got ${inAny(200)})`)
    t.ok(inAny(1000) <= 2 * 5 + 1, `at most 11 runs in any second (got ${inAny(1000)})`)
    t.equal(runs.length, 30, 'every event ran once')
  })
}
