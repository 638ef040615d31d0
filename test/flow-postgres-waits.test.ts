// Flow control's waits on the Postgres inbox: a run put off by a pause, or for
// want of a `concurrency` slot, waits long and is made due by the resume or the
// slot's release (schema version 5), rather than being claimed and put back at
// short intervals: a paused backlog was rewritten every second, one waiting
// for a slot every 100 ms (36 deferrals an event, measured, for 2 000 events
// behind concurrency 1).
import t from 'tap'
import { Webhooks } from '../src/index.js'
import { postgresInbox, type PostgresInbox } from '../src/postgres/inbox.js'
import { freshSchema, postgresForTests } from './helpers/postgres.js'
import { captureLogger, delivery, event, SECRET, sleep, until } from './inbox-contract/support.js'

const postgres = await postgresForTests(t)
if (postgres.url === undefined) {
  t.plan(0, `Postgres flow waits skipped: ${postgres.reason}`)
} else {
  const connectionString = postgres.url
  const receiverOn = (schema: string): Webhooks<PostgresInbox> =>
    new Webhooks<PostgresInbox>({ secret: SECRET, closeGraceMs: 2_000, logger: captureLogger(), inbox: postgresInbox({ connectionString, schema }) })
  const deferred = (webhooks: Webhooks<PostgresInbox>, name: string, reason: 'paused' | 'concurrency'): number =>
    webhooks.stats().flow.handlers[name]?.deferred[reason] ?? 0

  t.test('postgres: events behind concurrency 1 each wait for a slot about once, and all run, one at a time', async (t) => {
    const webhooks = receiverOn(freshSchema('flow_wait'))
    t.teardown(() => webhooks.close())
    const count = 150
    let running = 0
    let most = 0
    let ran = 0
    webhooks.on('action.completed', async function partnerCall () {
      running++
      most = Math.max(most, running)
      await sleep(5)
      running--
      ran++
    }, { name: 'partnerCall', concurrency: 1 })
    for (let index = 0; index < count; index++) t.equal((await webhooks.receive(delivery(event(`evt_wait_${index}`)))).status, 200)
    await until(() => ran === count, 'every event to run', 60_000)
    t.equal(most, 1, 'one at a time')
    const waits = deferred(webhooks, 'partnerCall', 'concurrency')
    // Each waits at most a few times (the batch it was claimed with, a wake-up another run took first); asked every 100 ms, they waited ~36 times each.
    t.ok(waits <= count * 3, `${waits} deferrals for want of a slot, for ${count} events`)
  })

  t.test('postgres: a paused handler\'s backlog is not asked again every second; resume() makes it due at once', async (t) => {
    const webhooks = receiverOn(freshSchema('flow_wait'))
    t.teardown(() => webhooks.close())
    const ran = new Set<string>()
    webhooks.on('action.completed', async function award (evt) { ran.add(evt.id) }, { name: 'award' })
    webhooks.on('action.completed', async function notify () {}, { name: 'notify' })
    await webhooks.pause('award')
    const count = 40
    for (let index = 0; index < count; index++) t.equal((await webhooks.receive(delivery(event(`evt_paused_${index}`)))).status, 200)
    await until(() => deferred(webhooks, 'award', 'paused') >= count, 'every event to be put off once')
    await sleep(3_000)
    const waits = deferred(webhooks, 'award', 'paused')
    // Asked again every second, 40 events would have been put off about 160 times by now.
    t.ok(waits <= count * 2, `${waits} deferrals for ${count} paused events over 3 s`)
    t.equal(ran.size, 0, 'nothing ran while paused')
    const resumedAt = Date.now()
    await webhooks.resume('award')
    await until(() => ran.size === count, 'the backlog to run after resume()', 20_000)
    // A wait is 300 s long: only the resume's wake-up brings them back this soon.
    t.ok(Date.now() - resumedAt < 15_000, 'they ran on the resume, not at the end of their wait')
  })
}
