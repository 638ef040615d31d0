import { randomUUID } from 'node:crypto'
import t from 'tap'
import { bullmqInbox } from '../src/bullmq/inbox.js'
import { redisForTests } from './helpers/redis.js'
import { delivery, event, receiver, sleep, until } from './inbox-contract/support.js'
import { BASIC, PREFIX, SAME_ORIGIN, fastifyApp, form, tokenOn } from './dashboard/support.js'

const redis = await redisForTests(t)
if (redis.url === undefined) {
  t.plan(0, `the CLI-style dashboard on BullMQ skipped: no Redis (${redis.reason})`)
} else {
  const { connection } = redis
  t.test('BullMQ, no receiver in the dashboard\'s process (the CLI\'s dashboard): its pause is kept in Redis and holds back a receiver elsewhere', async (t) => {
    const queueName = `dashboard-flow-${randomUUID()}`
    // The receiver, as on another machine.
    const webhooks = receiver(bullmqInbox({ connection, queueName }))
    t.teardown(() => webhooks.close())
    const ran: string[] = []
    webhooks.on('action.completed', async function award (event) { ran.push(event.id) })
    // The dashboard on the store alone, as `sir-webhooks dashboard --store redis://…` serves it.
    const storeInbox = bullmqInbox({ connection, queueName })
    t.teardown(() => storeInbox.close(0))
    const app = await fastifyApp(t, { inbox: storeInbox })
    const page = await app.inject({ method: 'GET', url: PREFIX + '/handlers', headers: { authorization: BASIC } })
    t.match(page.body, 'No receiver runs in this process')
    t.match(page.body, 'The pause is kept in Redis: every receiver on the queue sees it')
    const paused = await app.inject({ method: 'POST', url: PREFIX + '/actions/pause', headers: { ...SAME_ORIGIN, authorization: BASIC }, payload: form({ handler: 'award', token: tokenOn(page.body, 'pause') }) })
    t.equal(paused.statusCode, 303)
    await until(() => webhooks.stats().flow.handlers.award?.paused === true, 'the receiver to see the pause from Redis')
    t.equal((await webhooks.receive(delivery(event('evt_bull_paused')))).status, 200, 'a delivery while paused is taken')
    await sleep(700)
    t.same(ran, [], 'the paused handler did not run')

    // A second dashboard process, started now, reads the pause from Redis.
    const otherInbox = bullmqInbox({ connection, queueName })
    t.teardown(() => otherInbox.close(0))
    const other = await fastifyApp(t, { inbox: otherInbox })
    const shown = await other.inject({ method: 'GET', url: PREFIX + '/handlers', headers: { authorization: BASIC } })
    t.match(shown.body, /<tr data-handler="award">[\s\S]*?data-field="paused">paused</, 'another dashboard reads the pause from Redis')
    const resumed = await other.inject({ method: 'POST', url: PREFIX + '/actions/resume', headers: { ...SAME_ORIGIN, authorization: BASIC }, payload: form({ handler: 'award', token: tokenOn(shown.body, 'resume') }) })
    t.equal(resumed.statusCode, 303)
    await until(() => ran.includes('evt_bull_paused'), 'the resumed handler to run, in the receiver')
  })
}
