// A handler's concurrency on the BullMQ inbox is shared by every receiver on the queue,
// and a receiver killed while holding a slot gives it back once its lease ends.
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { bullmqInbox } from '../src/bullmq/inbox.js'
import { redisForTests } from './helpers/redis.js'
import { delivery, event, receiver, sleep, until } from './inbox-contract/support.js'

const redis = await redisForTests(t)
if (redis.url === undefined) {
  t.plan(0, `BullMQ shared concurrency skipped: no Redis (${redis.reason})`)
} else {
  const { connection, url } = redis

  t.test('two receivers, concurrency 1 shared: no two runs overlap', async (t) => {
    const queueName = `slots-pair-${randomUUID()}`
    // Each receiver would take four jobs at once: only the shared slot keeps them to one.
    const a = receiver(bullmqInbox({ connection, queueName }), { concurrency: 4 })
    const b = receiver(bullmqInbox({ connection, queueName }), { concurrency: 4 })
    t.teardown(async () => { await Promise.all([a.close(), b.close()]) })
    const runs: Array<{ by: string, start: number, end: number }> = []
    for (const [by, webhooks] of [['a', a], ['b', b]] as const) {
      webhooks.on('action.completed', async function callPartner () {
        const start = Date.now()
        await sleep(120)
        runs.push({ by, start, end: Date.now() })
      }, { name: 'callPartner', concurrency: 1 })
    }
    for (let index = 0; index < 10; index++) {
      t.equal((await (index % 2 === 0 ? a : b).receive(delivery(event(`evt_slots_${index}`)))).status, 200)
    }
    await until(() => runs.length === 10, 'every event to run', 60_000)
    runs.sort((x, y) => x.start - y.start)
    const overlaps = runs.slice(1).filter((run, index) => run.start < (runs[index]?.end ?? 0))
    t.same(overlaps, [], 'each run started after the one before had ended')
    // Each receiver took part: it ran some, or, running none itself, was refused
    // the slot, which only the shared slot in Redis can do (its own count was 0).
    // Which one BullMQ hands the jobs to is not up to the test.
    for (const [by, webhooks] of [['a', a], ['b', b]] as const) {
      const ran = runs.filter((run) => run.by === by).length
      const refused = webhooks.stats().flow?.handlers.callPartner?.deferred.concurrency ?? 0
      t.ok(ran > 0 || refused > 0, `receiver ${by} took part: ${ran} runs, ${refused} refused the shared slot`)
    }
    t.ok((a.stats().flow?.handlers.callPartner?.deferred.concurrency ?? 0) + (b.stats().flow?.handlers.callPartner?.deferred.concurrency ?? 0) > 0, 'runs waited for the slot')
  })

  t.test('a slot given back wakes a job waiting for it, rather than the job asking again later', async (t) => {
    const webhooks = receiver(bullmqInbox({ connection, queueName: `slots-wake-${randomUUID()}` }), { concurrency: 6 })
    t.teardown(() => webhooks.close())
    const runs: Array<{ start: number, end: number }> = []
    webhooks.on('action.completed', async function callPartner () {
      const start = Date.now()
      await sleep(50)
      runs.push({ start, end: Date.now() })
    }, { name: 'callPartner', concurrency: 1 })
    for (let index = 0; index < 6; index++) t.equal((await webhooks.receive(delivery(event(`evt_wake_${index}_${randomUUID()}`)))).status, 200)
    await until(() => runs.length === 6, 'every event to run', 30_000)
    runs.sort((x, y) => x.start - y.start)
    const gaps = runs.slice(1).map((run, index) => run.start - (runs[index]?.end ?? 0)).sort((x, y) => x - y)
    const median = gaps[Math.floor(gaps.length / 2)] ?? Infinity
    // Put back for a second when the slot is taken (SLOT_WAIT_MS): without a wake-up, about a second between runs.
    t.ok(median < 500, `the next run starts soon after the slot is given back (gaps ${gaps.join(', ')} ms)`)
  })

  t.test('a receiver SIGKILLed while holding the only slot frees it once its lease ends', async (t) => {
    const queueName = `slots-kill-${randomUUID()}`
    const leaseMs = 1_500
    const loaderArgs = process.execArgv.filter((arg) => arg.includes('@tapjs/typescript'))
    const script = fileURLToPath(new URL('./fixtures/bullmq-slot-holder.ts', import.meta.url))
    const holder = spawn(process.execPath, [...loaderArgs, script], {
      env: { ...process.env, SIR_REDIS_URL: url, SIR_QUEUE: queueName, SIR_LEASE_MS: String(leaseMs) },
      stdio: ['ignore', 'pipe', 'inherit']
    })
    const exited = new Promise<void>((resolve) => { holder.once('exit', () => { resolve() }) })
    t.teardown(async () => { holder.kill('SIGKILL'); await exited })
    const started: string[] = []
    holder.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      for (const line of chunk.split('\n')) if (line.startsWith('started ')) started.push(line.slice(8))
    })
    // Accepts only (no handler): the held event can only run in the holder.
    const front = receiver(bullmqInbox({ connection, queueName }))
    t.teardown(() => front.close())
    t.equal((await front.receive(delivery(event('evt_slot_held')))).status, 200)
    await until(() => started.includes('evt_slot_held'), 'the holder to take the slot', 30_000)
    // Long enough for a renewal or two: a lease not renewed would end here.
    await sleep(leaseMs * 1.5)
    holder.kill('SIGKILL')
    await exited
    const killedAt = Date.now()

    const survivor = receiver(bullmqInbox({ connection, queueName, lockDurationMs: leaseMs, stalledIntervalMs: 300 }))
    t.teardown(() => survivor.close())
    const runs: Array<{ id: string, at: number }> = []
    survivor.on('action.completed', async function callPartner (e) { runs.push({ id: e.id, at: Date.now() }) }, { name: 'callPartner', concurrency: 1 })
    t.equal((await survivor.receive(delivery(event('evt_slot_after')))).status, 200)
    await until(() => runs.length === 2, 'both events to run in the survivor', 30_000)
    t.same(runs.map((run) => run.id).sort(), ['evt_slot_after', 'evt_slot_held'], 'the new event ran, and the killed run was taken over')
    const first = Math.min(...runs.map((run) => run.at))
    // Renewed every third of a lease, so it ends at least two thirds of one after the kill.
    t.ok(first - killedAt >= leaseMs * 2 / 3 - 100, `nothing ran while the killed receiver's lease lasted (first run ${first - killedAt} ms after the kill)`)
    // Not much later either: the ended lease is dropped, not left until its key expires.
    t.ok(first - killedAt < leaseMs * 5, `the slot was free soon after the lease ended (${first - killedAt} ms after the kill, lease ${leaseMs} ms)`)
    t.ok((survivor.stats().flow?.handlers.callPartner?.deferred.concurrency ?? 0) > 0, 'the survivor waited for the slot')
  })
}
