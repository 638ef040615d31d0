import t from 'tap'
import { postgresForTests } from './helpers/postgres.js'
import { redisForTests } from './helpers/redis.js'
import { delivery, event, sleep, until } from './inbox-contract/support.js'
import { BASIC, PREFIX, SAME_ORIGIN, fastifyApp, form, tokenOn, withHandler } from './dashboard/support.js'
import { storeInboxes } from './dashboard/stores.js'

const postgres = await postgresForTests(t)
const redis = await redisForTests(t)

const inboxOn = storeInboxes(postgres, redis, 'dashboard-filter')

for (const store of ['sqlite', 'postgres', 'bullmq'] as const) {
t.test(`${store}: a filtered set of dead letters is counted first, then re-driven on confirmation, and only its handlers run`, async (t) => {
  const inbox = inboxOn(t, store)
  if (typeof inbox === 'string') return t.comment(`${store} skipped: ${inbox}`)
  const { webhooks, handled, failing } = withHandler(t, inbox)
  const campaign: string[] = []
  webhooks.on('campaign.paused', async function pauseCampaign (event) { if (failing.on) throw new Error('not yet'); campaign.push(event.id) })
  const dead = async (id: string, type?: string) => {
    t.equal((await webhooks.receive(delivery(event(id, type)))).status, 200)
    await until(async () => (await webhooks.inbox.outcome?.(id))?.state === 'dead', `${id} to be dead`)
  }
  await dead('evt_old')
  await sleep(20)
  const since = new Date().toISOString()
  await dead('evt_new')
  await dead('evt_campaign', 'campaign.paused')
  failing.on = false
  const app = await fastifyApp(t, webhooks)
  const page = await app.inject({ method: 'GET', url: PREFIX + '/dead', headers: { authorization: BASIC } })
  t.match(page.body, 'Re-drive by filter')
  const token = tokenOn(page.body, 'redrive-filtered')
  const post = async (fields: Record<string, string>) =>
    await app.inject({ method: 'POST', url: PREFIX + '/actions/redrive-filtered', headers: { ...SAME_ORIGIN, authorization: BASIC }, payload: form({ token, ...fields }) })

  const counted = await post({ type: 'action.completed', since })
  t.equal(counted.statusCode, 200, 'the first POST only counts')
  t.match(counted.body, /Queue <strong data-field="count">1<\/strong> <span>dead events of type action.completed, received since /)
  t.match(counted.body, /name="max" value="1"/, 'the confirmation carries the count it confirms')
  await sleep(100)
  t.same(handled, [], 'nothing ran yet')
  t.equal((await webhooks.inbox.outcome?.('evt_new'))?.state, 'dead')
  t.match((await post({ type: 'action.completed', handler: 'award' })).body, /<strong data-field="count">2<\/strong> <span>dead events of type action.completed, failed by handler award/)
  t.match((await post({ type: 'nothing.here' })).body, 'No dead event matches')
  t.equal((await post({ since: 'yesterday-ish' })).statusCode, 400, 'a date that is none')
  t.equal((await post({ since, until: since })).statusCode, 400, 'an empty range')

  t.equal((await post({ type: 'action.completed', since, confirm: 'yes', token: tokenOn(counted.body, 'redrive-filtered') })).statusCode, 400, 'a confirmation without the count it confirms')
  const confirmed = await post({ type: 'action.completed', since, confirm: 'yes', max: '1', token: tokenOn(counted.body, 'redrive-filtered') })
  t.equal(confirmed.statusCode, 303)
  t.equal(confirmed.headers.location, `${PREFIX}/dead?redriven=1`)
  await until(() => handled.includes('evt_new'), 'the re-driven handler, in the app')
  await until(async () => (await webhooks.inbox.outcome?.('evt_new'))?.state === 'done', 'evt_new to be done')
  t.same(handled, ['evt_new'], 'only the filtered event ran')
  t.equal((await webhooks.inbox.outcome?.('evt_old'))?.state, 'dead', 'outside the filter: still dead')
  t.equal((await webhooks.inbox.outcome?.('evt_campaign'))?.state, 'dead')
  t.same(campaign, [])
  const after = await app.inject({ method: 'GET', url: confirmed.headers.location as string, headers: { authorization: BASIC } })
  t.match(after.body, 'Re-drove 1 dead event(s).')

  const readOnly = await fastifyApp(t, webhooks, { readOnly: true })
  const shown = await readOnly.inject({ method: 'GET', url: PREFIX + '/dead', headers: { authorization: BASIC } })
  t.notMatch(shown.body, 'redrive-filtered', 'no filtered re-drive in read-only mode')
  t.equal((await readOnly.inject({ method: 'POST', url: PREFIX + '/actions/redrive-filtered', headers: { ...SAME_ORIGIN, authorization: BASIC }, payload: form({ token, confirm: 'yes' }) })).statusCode, 403)
  t.equal((await webhooks.inbox.outcome?.('evt_old'))?.state, 'dead', 'still dead')
})
}

t.test('a store without countMatching and requeue: the dead letters page says it cannot re-drive by filter', async (t) => {
  const outcome = { id: 'evt_x', type: 'action.completed', state: 'dead' as const, receivedAt: new Date(), attempts: 3, lastError: 'Error: no' }
  const app = await fastifyApp(t, { inbox: { deadLetters: async () => [outcome], redrive: async () => true } })
  const page = await app.inject({ method: 'GET', url: PREFIX + '/dead', headers: { authorization: BASIC } })
  t.match(page.body, 'This store cannot count and re-drive dead letters by filter')
  t.notMatch(page.body, '/actions/redrive-filtered')
})
