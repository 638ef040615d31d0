import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import t from 'tap'
import { kill, startReceiver } from './fixtures/spawn-receiver.js'
import { SenderLog, inParallel, readHandled, resendLikeThePlatform, untilEveryAckedIsHandled } from './helpers/crash-run.js'
import { redisForTests } from './helpers/redis.js'
import { HOLD_MS } from '../src/bullmq/jobs.js'
import { tempDir } from './inbox-contract/scenarios.js'

// A receiver killed between an accept's seen-mark and its promotion leaves the event's
// job held (HOLD_MS, 60 s) with its id marked seen: the resend to the survivor is
// answered 200 (a duplicate), and the event runs when its hold runs out. A kill lands in
// that window now and then, more often on a loaded machine: every acknowledged event is
// still required, within HOLD_MS plus room for the recovery of the killed receiver's
// active jobs (lockDurationMs 1 s + 2 x stalledIntervalMs 300 ms) and the survivor's
// backlog. The file's timeout (120 s by .taprc) is raised to hold that wait.
const ACKED_HANDLED_MS = HOLD_MS + 30_000
t.setTimeout(ACKED_HANDLED_MS + 120_000)

const redis = await redisForTests(t)
if (redis.url === undefined) {
  t.plan(0, `BullMQ crash test skipped: no Redis (${redis.reason})`)
} else {
  const redisUrl = redis.url
  t.test('bullmq: two receivers share one Redis; one is killed with SIGKILL; nothing answered 2xx is lost, nothing refused is handled', async (t) => {
    const handledFile = join(tempDir(t), 'handled.txt')
    const env = {
      SIR_STORE: 'bullmq',
      SIR_REDIS_URL: redisUrl,
      SIR_QUEUE: `crash-${randomUUID()}`,
      SIR_LEASE_MS: '1000',
      SIR_SECRET: 'whsec_inbox_contract',
      SIR_HANDLED: handledFile,
      SIR_HANDLER_MS: '150',
      SIR_CONCURRENCY: '3',
      SIR_MAX_QUEUE: '12'
    }
    const ids = Array.from({ length: 80 }, (_, index) => `evt_${index}`)
    const forgedSecret = 'whsec_not_the_secret'
    const forged = ids.filter((_, index) => index % 10 === 5).map((id) => `forged_${id}`)
    const log = new SenderLog()

    const [doomed, survivor] = await Promise.all([startReceiver(env), startReceiver(env)])
    t.teardown(() => kill(doomed, 'SIGKILL'))
    t.teardown(() => kill(survivor, 'SIGTERM'))
    const alive = (): boolean => doomed.child.exitCode === null && doomed.child.signalCode === null
    // Whether a handler started in the receiver to kill has not finished: the kill must cut one short.
    const inFlightOnDoomed = (): boolean => {
      const finished = new Set(readHandled(handledFile).filter((line) => line.pid === doomed.child.pid).map((line) => line.id))
      return doomed.started.some((id) => !finished.has(id))
    }
    // A load balancer: ids alternate between the two; every fourth is delivered to both
    // at once, so the shared dedupe must answer one copy 200 and the other a duplicate.
    let sent = 0
    await inParallel([...ids, ...forged], 6, async (id) => {
      const index = sent++
      if (id.startsWith('forged')) {
        await log.send(index % 2 === 0 ? doomed.url : survivor.url, id, forgedSecret)
      } else if (index % 4 === 0) {
        await Promise.all([log.send(doomed.url, id), log.send(survivor.url, id)])
      } else {
        await log.send(index % 2 === 0 ? doomed.url : survivor.url, id)
      }
      if (log.answers >= 45 && alive() && inFlightOnDoomed()) doomed.child.kill('SIGKILL')
    })
    // A loaded machine may have had no run in flight there when the load ended: wait for one.
    for (const deadline = Date.now() + 20_000; alive() && !inFlightOnDoomed() && Date.now() < deadline;) await new Promise((resolve) => setTimeout(resolve, 10))
    await kill(doomed, 'SIGKILL')
    t.ok(log.acked.size > 0 && log.refused.size > forged.length, 'before the kill, some events were accepted and some refused 503')
    const doomedFinished = new Set(readHandled(handledFile).filter((line) => line.pid === doomed.child.pid).map((line) => line.id))
    const inFlight = doomed.started.filter((id) => !doomedFinished.has(id))
    t.ok(inFlight.length > 0, 'some handlers were running in the killed receiver')

    const abandoned = await resendLikeThePlatform(log, survivor.url, forgedSecret)
    t.same(forged.filter((id) => !log.refused.has(id)), [], 'every forged delivery was refused')
    t.ok(abandoned.size > 0, 'some ids stayed refused')

    await untilEveryAckedIsHandled(log, handledFile, ACKED_HANDLED_MS)
    const lines = readHandled(handledFile)
    const handled = new Set(lines.map((line) => line.id))
    t.same([...log.acked].filter((id) => !handled.has(id)), [], 'every event answered 2xx was handled')
    t.same([...log.refused].filter((id) => handled.has(id)), [], 'no refused event was handled')
    t.ok(inFlight.every((id) => handled.has(id)), 'the events cut off by the kill were taken over by the survivor')
    const twice = [...handled].filter((id) => lines.filter((line) => line.id === id).length > 1)
    t.ok(twice.every((id) => doomed.started.includes(id)), 'only events running at the kill were handled twice; duplicates across receivers were not')
    t.ok(lines.some((line) => line.pid === survivor.child.pid && line.attempt >= 2), 'taken-over handlers were told it is a later attempt')
  })
}
