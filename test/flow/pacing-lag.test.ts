// Pacing under lag, on a virtual clock: events put back for their reserved
// token come back late (BullMQ queues a delayed job behind the new ones; a busy
// event loop), as measured in bench/burst.js. The handler must still run at its
// rate, and never above the token bucket's bound in any window.
import t from 'tap'
import { runFlowAttempt, type FlowCarry, type FlowClock } from '../../src/core/flow/attempt.js'
import { FlowGate } from '../../src/core/flow/gate.js'
import { MemoryFlowStore } from '../../src/core/flow/memory-store.js'
import type { RegisteredHandler } from '../../src/core/handlers.js'
import type { InboxRuntime } from '../../src/core/inbox.js'
import { captureLogger } from '../inbox-contract/support.js'

interface Job { id: number, due: number, carried: FlowCarry }

/**
 * One worker on a virtual clock: takes the earliest job due, runs one flow
 * attempt, and puts a deferred job back for its retry plus `lag(n)` ms.
 * Returns the virtual start times of the handler's runs.
 */
async function simulate (options: { perSecond: number, burst: number, events: number, arrivalsPerSecond: number, lag: (n: number) => number, untilMs: number }): Promise<number[]> {
  let clockNow = 0
  const clock: FlowClock = { now: () => clockNow, sleep: async (ms) => { clockNow += ms } }
  const starts: number[] = []
  const handler = { name: 'callPartner', limits: { rate: { perSecond: options.perSecond, burst: options.burst } } } as unknown as RegisteredHandler
  const logger = captureLogger()
  const gate = new FlowGate(new MemoryFlowStore(() => clockNow), { maxDeferrals: 100, maxDeferredMs: 3_600_000 }, logger)
  const runtime = {
    logger,
    signal: new AbortController().signal,
    handlersFor: () => [handler],
    runHandler: () => { starts.push(clockNow) },
    handlerSucceeded: () => {}
  } as unknown as InboxRuntime
  const jobs: Job[] = []
  for (let id = 0; id < options.events; id++) jobs.push({ id, due: Math.floor(id * 1000 / options.arrivalsPerSecond), carried: {} })
  let putBacks = 0
  while (jobs.length > 0) {
    jobs.sort((a, b) => a.due - b.due || a.id - b.id)
    const job = jobs.shift() as Job
    clockNow = Math.max(clockNow, job.due)
    if (clockNow > options.untilMs) break
    const event = { id: `evt_${job.id}`, type: 'action.completed' } as never
    const result = await runFlowAttempt(runtime, gate, { event, receivedAt: 0, attempt: 1 }, [], job.carried, clock)
    if (result.deferred.length > 0) {
      const retryInMs = Math.min(...result.deferred.map((run) => run.retryInMs))
      jobs.push({ id: job.id, due: clockNow + retryInMs + options.lag(putBacks++), carried: { deferrals: result.deferrals, reserved: result.reserved } })
    }
  }
  return starts
}

/** The most runs that started in any window of `windowMs`. */
function mostIn (starts: number[], windowMs: number): number {
  let most = 0
  for (let first = 0, last = 0; last < starts.length; last++) {
    while ((starts[last] as number) - (starts[first] as number) >= windowMs) first++
    most = Math.max(most, last - first + 1)
  }
  return most
}

/** Deterministic lags from 0 to 200 ms (a linear congruential sequence): most later than one token interval at 20/s. */
const lags = (n: number): number => ((n * 7919 + 104_729) % 997) / 997 * 200

t.test('20/s with 500/s offered and put-backs 0-200 ms late: the rate holds, the bound too', async (t) => {
  const starts = await simulate({ perSecond: 20, burst: 1, events: 10_000, arrivalsPerSecond: 500, lag: lags, untilMs: 30_000 })
  const inWindow = starts.filter((at) => at >= 5_000 && at < 25_000).length
  const perSecond = inWindow / 20
  t.ok(perSecond >= 19 && perSecond <= 21, `20/s ± 5% from 5 s to 25 s (got ${perSecond}/s)`)
  // The token bucket's bound: burst + perSecond × window.
  t.ok(mostIn(starts, 1_000) <= 21, `at most 21 runs in any second (got ${mostIn(starts, 1_000)})`)
  t.ok(mostIn(starts, 200) <= 5, `at most 5 runs in any 200 ms (got ${mostIn(starts, 200)})`)
})

t.test('a put-back 900 ms late now and then (a stall): no run lost, none bunched', async (t) => {
  const stalls = (n: number): number => n % 50 === 0 ? 900 : 10
  const starts = await simulate({ perSecond: 5, burst: 1, events: 2_000, arrivalsPerSecond: 200, lag: stalls, untilMs: 60_000 })
  const perSecond = starts.filter((at) => at >= 5_000 && at < 55_000).length / 50
  t.ok(perSecond >= 4.75 && perSecond <= 5.25, `5/s ± 5% (got ${perSecond}/s)`)
  t.ok(mostIn(starts, 1_000) <= 6, `at most 6 runs in any second (got ${mostIn(starts, 1_000)})`)
  t.ok(mostIn(starts, 200) <= 2, `at most 2 runs in any 200 ms (got ${mostIn(starts, 200)})`)
})

t.test('burst 5 after a quiet spell: five back to back, then the rate', async (t) => {
  const starts = await simulate({ perSecond: 10, burst: 5, events: 40, arrivalsPerSecond: 1_000, lag: () => 0, untilMs: 20_000 })
  t.equal(starts.filter((at) => at < 10).length, 5, 'the burst starts at once')
  t.equal(starts.length, 40, 'every event ran once')
  t.ok(mostIn(starts, 1_000) <= 15, `at most burst + perSecond in any second (got ${mostIn(starts, 1_000)})`)
})
