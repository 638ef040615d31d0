import t from 'tap'
import { History } from '../src/dashboard/history.js'
import { Samples } from '../src/dashboard/samples.js'
import { MemoryInbox } from '../src/core/memory-inbox.js'
import { delivery, event, receiver, until } from './inbox-contract/support.js'
import { BASIC, PREFIX, fastifyApp } from './dashboard/support.js'

const sample = (t: number, accepted = 1) => ({ t, accepted, duplicate: 0, refused: 0, succeeded: accepted, failed: 0, retried: 0 })

t.test('since start, in bounded memory: buckets merge and widen, and no count is lost', async (t) => {
  const history = new History(8, 5)
  // A day of samples every 5 s: 17 280 of them.
  for (let index = 0; index < 17_280; index++) history.add(sample(1_000_000 + index * 5))
  const { bucketSeconds, points } = history.view()
  t.ok(points.length <= 8, `at most 8 buckets: ${points.length}`)
  t.ok(points.length >= 4, 'and not fewer than half of them')
  t.equal(bucketSeconds, 5 * 2 ** 12, 'doubled until a day fits')
  t.equal(points.reduce((sum, point) => sum + point.accepted, 0), 17_280, 'every sample is counted in some bucket')
  t.same(points.map((point) => point.t), [...points.map((point) => point.t)].sort((a, b) => a - b), 'oldest first')
  t.equal(points[0]?.t, 1_000_000, 'from the first sample')
})

t.test('Samples feeds both charts: the last hour\'s ring and the history', async (t) => {
  const samples = new Samples(3, 1000)
  const stats = (accepted: number) => ({ deliveries: { accepted, duplicate: 0, duplicateDiffers: 0, refused: 0, refusedBy: {} }, queue: { waiting: 0, running: 0 }, handlers: { succeeded: 0, retried: 0, failed: 0, byName: {} }, deadLetters: 0 }) as never
  for (let index = 0; index < 10; index++) samples.take(stats(index * 2), 1_000_000 + index * 1000)
  t.equal(samples.list().length, 3, 'the ring keeps its capacity')
  t.equal(samples.history.view().points.reduce((sum, point) => sum + point.accepted, 0), 18, 'the history keeps every delivery since start')
})

t.test('the overview\'s JSON brings the since-start series when asked, and the page has its chart', async (t) => {
  const webhooks = receiver(new MemoryInbox())
  t.teardown(() => webhooks.close())
  webhooks.on('action.completed', function award () {})
  const app = await fastifyApp(t, webhooks, { sampleIntervalMs: 100 })
  for (const id of ['evt_1', 'evt_2']) t.equal((await webhooks.receive(delivery(event(id)))).status, 200)
  const get = async (url: string) => await app.inject({ method: 'GET', url: PREFIX + url, headers: { authorization: BASIC } })
  await until(async () => (JSON.parse((await get('/api/overview?history=1')).body) as { history: { points: Array<{ accepted: number }> } })
    .history.points.reduce((sum, point) => sum + point.accepted, 0) === 2, 'the history to count both deliveries')
  const plain = JSON.parse((await get('/api/overview?since=1')).body) as Record<string, unknown>
  t.notOk('history' in plain, 'not sent with every refresh')
  t.match((await get('/')).body, '<div id="chart-history"></div>')
})
