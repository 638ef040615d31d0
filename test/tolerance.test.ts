import { createServer } from 'node:http'
import t from 'tap'
import { Webhooks } from '../src/index.js'
import { nodeListener } from '../src/node/listener.js'
import { captureLogs } from './helpers/logs.js'
import { SECRET, actionCompleted, post, signedRequest } from './helpers/deliveries.js'
import { serveForTest } from './helpers/serve.js'

// issue 20, item 17: a non-default toleranceSeconds proved through a receiver over a
// real socket, not only through verify(). Each window is probed just inside and just
// outside, on both sides of now, with margins wide enough for a loaded machine; each
// probe is one the default 300 s would answer the other way, so an ignored option fails.
const cases = [
  { toleranceSeconds: 30, inside: 20, outside: 45 },
  { toleranceSeconds: 900, inside: 870, outside: 930 }
]

for (const { toleranceSeconds, inside, outside } of cases) {
  t.test(`toleranceSeconds ${toleranceSeconds}: a delivery ${inside} s off is handled, ${outside} s off is refused`, async (t) => {
    const webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger, toleranceSeconds })
    const handled: string[] = []
    webhooks.on('action.completed', (event) => { handled.push(event.id) })
    const url = await serveForTest(t, createServer(nodeListener(webhooks)), webhooks)
    const now = (): number => Math.floor(Date.now() / 1000)

    const expected: string[] = []
    for (const offset of [-inside, inside]) {
      const event = actionCompleted()
      const answer = await post(`${url}/webhooks/sir`, signedRequest(event, { timestamp: now() + offset }))
      t.equal(answer.status, 200, `${offset} s: accepted`)
      expected.push(event.id)
    }
    for (const offset of [-outside, outside]) {
      const event = actionCompleted()
      const answer = await post(`${url}/webhooks/sir`, signedRequest(event, { timestamp: now() + offset }))
      t.equal(answer.status, 401, `${offset} s: refused`)
      t.match(answer.json, { error: { code: 'TIMESTAMP_OUT_OF_RANGE' } })
    }
    await webhooks.idle()
    t.same(handled, expected, 'the handler ran for the deliveries inside the window, and only those')
    t.match(webhooks.stats().deliveries, { accepted: 2 })
  })
}
