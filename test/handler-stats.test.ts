import { join } from 'node:path'
import t from 'tap'
import { MemoryInbox } from '../src/core/memory-inbox.js'
import { HandlerFigures, quantile } from '../src/core/handler-figures.js'
import type { Inbox } from '../src/index.js'
import { sqliteInbox } from '../src/sqlite/inbox.js'
import { tempDir } from './inbox-contract/scenarios.js'
import { delivery, event, receiver, sleep, until } from './inbox-contract/support.js'

for (const store of ['memory', 'sqlite'] as const) {
  t.test(`${store}: stats().handlers.byName counts each handler's runs, successes, retries, failures and its run durations`, async (t) => {
    const inbox: Inbox = store === 'memory' ? new MemoryInbox() : sqliteInbox({ path: join(tempDir(t), 'inbox.db') })
    const webhooks = receiver(inbox, { retry: { attempts: 2, minDelayMs: 5, maxDelayMs: 10 } })
    t.teardown(() => webhooks.close())
    webhooks.on('action.completed', async function slow () { await sleep(40) })
    // Fails every run: two attempts, then the event is dead.
    webhooks.on('action.completed', async function broken () { throw new Error('partner down') })
    // Limits need flow control, which the SQLite inbox has not.
    if (store === 'memory') webhooks.on('action.completed', function quick () {}, { concurrency: 3, rate: { perSecond: 50, burst: 5 } })
    t.same(webhooks.stats().handlers.byName.slow, { runs: 0, succeeded: 0, retried: 0, failed: 0, p50Ms: undefined, p99Ms: undefined },
      'a registered handler is listed before it runs')

    for (const id of ['evt_a', 'evt_b']) t.equal((await webhooks.receive(delivery(event(id)))).status, 200)
    await until(() => webhooks.stats().handlers.byName.broken?.failed === 2 && webhooks.stats().handlers.byName.slow?.succeeded === 2, 'every run')
    const { byName } = webhooks.stats().handlers
    t.match(byName.slow, { runs: 2, succeeded: 2, retried: 0, failed: 0 })
    t.match(byName.broken, { runs: 4, succeeded: 0, retried: 2, failed: 2 })
    const slow = byName.slow!
    t.ok(slow.p50Ms !== undefined && slow.p50Ms >= 35, `slow's median is its sleep: ${slow.p50Ms} ms`)
    t.ok(slow.p99Ms !== undefined && slow.p99Ms >= slow.p50Ms!, 'p99 at least p50')
    t.ok(byName.broken!.p50Ms !== undefined && byName.broken!.p50Ms < 35, 'a failing run is timed too')
    if (store === 'memory') {
      t.match(byName.quick, { runs: 2, succeeded: 2, limits: { concurrency: 3, rate: { perSecond: 50, burst: 5 } } }, 'limits as registered')
      t.notOk('limits' in byName.slow!, 'no limits where none were set')
    }
  })
}

t.test('the durations kept are the last 1024: the quantiles follow what the handler does now', async (t) => {
  const figures = new HandlerFigures()
  for (let index = 0; index < 5000; index++) figures.ran(1000)
  for (let index = 0; index < 1024; index++) figures.ran(index < 1000 ? 2 : 50)
  t.same(figures.snapshot(undefined), { runs: 0, succeeded: 0, retried: 0, failed: 0, p50Ms: 2, p99Ms: 50 })
  t.equal(quantile(new Float64Array([1, 2, 3, 4]), 0.5), 2, 'nearest rank: an observed value')
  t.equal(quantile(new Float64Array(0), 0.5), undefined)
})

t.test('every run is counted; a busy handler is timed one run in eight after its first 1024', async (t) => {
  const figures = new HandlerFigures()
  let timed = 0
  for (let index = 0; index < 2048; index++) if (figures.started()) timed += 1
  t.equal(figures.runs, 2048)
  t.equal(timed, 1024 + 1024 / 8)
})
