import t from 'tap'
import { createDelivery, createEvent } from '../../src/testing/index.js'
import { sign } from '../../src/index.js'
import { until } from '../inbox-contract/support.js'
import { ensureBuilt, runCli, startListen } from './helpers.js'

ensureBuilt()

// issue 20, item 17: the CLI's --tolerance, on the receiver `listen` runs and on
// `verify`. Every probe is one the default 300 s answers the other way.
const secret = 'whsec_dG9sZXJhbmNlLXNlY3JldA'

const cases = [
  { tolerance: 30, inside: 20, outside: 45 },
  { tolerance: 900, inside: 870, outside: 930 }
]

for (const { tolerance, inside, outside } of cases) {
  t.test(`listen --tolerance ${tolerance}: ${inside} s off is accepted and printed, ${outside} s off refused`, async (t) => {
    const listener = await startListen(['--secret', secret, '--tolerance', String(tolerance)])
    t.teardown(() => listener.stop())
    const now = (): number => Math.floor(Date.now() / 1000)
    for (const offset of [-inside, inside]) {
      const event = createEvent('campaign.paused')
      const delivery = createDelivery(event, { secret, timestamp: now() + offset })
      const answer = await fetch(listener.url, { method: 'POST', headers: delivery.headers, body: delivery.body })
      t.equal(answer.status, 200, `${offset} s: accepted`)
      await listener.waitFor((line) => line === `✓ campaign.paused  ${event.id}  created ${event.createdAt}`)
    }
    for (const offset of [-outside, outside]) {
      const delivery = createDelivery(createEvent('campaign.paused'), { secret, timestamp: now() + offset })
      const answer = await fetch(listener.url, { method: 'POST', headers: delivery.headers, body: delivery.body })
      t.equal(answer.status, 401, `${offset} s: refused`)
    }
    await listener.waitFor((line) => line.includes('likely CLOCK_SKEW') && line.includes(`${tolerance}`))
    // The hint can come before the second refusal's own line is printed: wait for both.
    const refusals = (): number => listener.lines.filter((line) => line.startsWith('✗ 401 TIMESTAMP_OUT_OF_RANGE')).length
    await until(() => refusals() >= 2, 'both refusals to be printed', 20_000).catch(() => {})
    t.equal(refusals(), 2, 'both refusals printed')
    t.equal(listener.lines.filter((line) => line.startsWith('✓ ')).length, 2, 'only the two inside were handled')
  })

  t.test(`verify --tolerance ${tolerance} judges the timestamp by that window`, async (t) => {
    const body = '{"id":"evt_1","type":"campaign.paused","createdAt":"2026-11-30T06:21:25Z","data":{}}'
    const timestamp = 1_796_000_000
    const { signature } = sign({ secret, rawBody: body, timestamp })
    const verify = async (at: number): Promise<number | null> =>
      (await runCli(['verify', '--secret', secret, '--timestamp', String(timestamp), '--signature', signature, '--tolerance', String(tolerance), '--at', String(at)], { stdin: body })).code
    t.equal(await verify(timestamp + inside), 0, `${inside} s later: verifies`)
    t.equal(await verify(timestamp - inside), 0, `${inside} s earlier: verifies`)
    t.equal(await verify(timestamp + outside), 1, `${outside} s later: does not`)
    t.equal(await verify(timestamp - outside), 1, `${outside} s earlier: does not`)
  })
}
