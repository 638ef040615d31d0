// Issue 20, item 13: a flood of refusals costs a bounded number of log lines,
// each reason still visible, the counts exact.
import { test } from 'tap'
import { Webhooks, type Delivery } from '../src/index.js'
import { RefusalLog } from '../src/core/refusal-log.js'
import { captureLogs } from './helpers/logs.js'
import { SECRET, actionCompleted, eventually, signedRequest } from './helpers/deliveries.js'

function delivery (options: Parameters<typeof signedRequest>[1] = {}, change: Partial<Delivery> = {}): Delivery {
  const request = signedRequest(actionCompleted(), options)
  return { contentType: request.headers['content-type'], signature: request.headers['x-sir-signature'], timestamp: request.headers['x-sir-timestamp'], rawBody: request.body, ...change }
}

/** Per reason: how many refusals the log accounts for (a full line is one, a count line its count), and its lines. */
function accounted (entries: Array<Record<string, unknown>>): Map<string, { refusals: number, lines: number }> {
  const byReason = new Map<string, { refusals: number, lines: number }>()
  for (const entry of entries) {
    if (typeof entry.reason !== 'string') continue
    const tally = byReason.get(entry.reason) ?? { refusals: 0, lines: 0 }
    tally.lines += 1
    tally.refusals += typeof entry.refused === 'number' ? entry.refused : 1
    byReason.set(entry.reason, tally)
  }
  return byReason
}

test('10 000 refused deliveries on a stopped clock: one full line per reason, then one count line each at close', async (t) => {
  const now = 1_780_000_000_000
  const logs = captureLogs()
  const webhooks = new Webhooks({ secret: SECRET, logger: logs.logger, clock: () => now })
  const nowSeconds = now / 1000
  const sent = { SIGNATURE_MISMATCH: 0, TIMESTAMP_OUT_OF_RANGE: 0, MISSING_SIGNATURE: 0, UNSUPPORTED_MEDIA_TYPE: 0 }
  for (let index = 0; index < 10_000; index++) {
    const kind = index % 10
    if (kind < 5) {
      await webhooks.receive(delivery({ secret: 'whsec_attacker', timestamp: nowSeconds }))
      sent.SIGNATURE_MISMATCH += 1
    } else if (kind < 8) {
      await webhooks.receive(delivery({ timestamp: nowSeconds - 3600 }))
      sent.TIMESTAMP_OUT_OF_RANGE += 1
    } else if (kind < 9) {
      await webhooks.receive(delivery({ timestamp: nowSeconds }, { signature: undefined }))
      sent.MISSING_SIGNATURE += 1
    } else {
      await webhooks.receive(delivery({ timestamp: nowSeconds, contentType: 'text/plain' }))
      sent.UNSUPPORTED_MEDIA_TYPE += 1
    }
  }
  const before = accounted(logs.entries())
  t.same([...before.values()].map((tally) => tally.lines), [1, 1, 1, 1], 'during the flood: the first refusal of each reason, no more')
  const first = logs.entries().find((entry) => entry.reason === 'TIMESTAMP_OUT_OF_RANGE')
  t.match(first, { level: 30, msg: 'webhook rejected', skewSeconds: 3600, bodyLength: Number }, 'the first is logged in full, with its fields')

  await webhooks.close()
  const after = accounted(logs.entries())
  t.same(Object.fromEntries([...after].map(([reason, tally]) => [reason, tally.refusals])), sent, 'every refusal accounted for, exactly')
  t.ok([...after.values()].every((tally) => tally.lines === 2), 'two lines per reason in all')
  t.same(webhooks.stats().deliveries.refusedBy, { ...webhooks.stats().deliveries.refusedBy, ...sent }, 'stats() counts them all too')
  const summary = logs.entries().find((entry) => entry.reason === 'SIGNATURE_MISMATCH' && entry.refused !== undefined)
  t.match(summary, { level: 30, refused: 4999, intervalSeconds: 10, msg: '4999 more deliveries refused for SIGNATURE_MISMATCH within 10 s of the one logged, not logged one by one' })
})

test('when the interval has passed on the receiver\'s clock, the count is written and the next refusal logged in full', async (t) => {
  let now = 1_780_000_000_000
  const logs = captureLogs()
  const webhooks = new Webhooks({ secret: SECRET, logger: logs.logger, clock: () => now })
  t.teardown(() => webhooks.close())
  const bad = (): Promise<unknown> => webhooks.receive(delivery({ secret: 'whsec_attacker', timestamp: Math.floor(now / 1000) }))
  for (let index = 0; index < 300; index++) await bad()
  now += 9_999
  await bad()
  t.equal(logs.entries().filter((entry) => entry.reason === 'SIGNATURE_MISMATCH').length, 1, 'still inside the interval: counted only')
  now += 1
  await bad()
  const lines = logs.entries().filter((entry) => entry.reason === 'SIGNATURE_MISMATCH')
  t.same(lines.map((entry) => entry.refused ?? 'full'), ['full', 300, 'full'], 'the count of the interval, then a full line opening the next')
})

test('a flood that stops is still counted when its interval ends, without another refusal', async (t) => {
  const logs = captureLogs()
  const refusals = new RefusalLog(() => Date.now(), logs.logger, 100)
  for (let index = 0; index < 1000; index++) refusals.refused('INVALID_TIMESTAMP', 'info', logs.logger, { reason: 'INVALID_TIMESTAMP' }, 'webhook rejected')
  refusals.refused('QUEUE_FULL', 'warn', logs.logger, { reason: 'QUEUE_FULL' }, 'webhook refused for now')
  await eventually(() => logs.entries().some((entry) => entry.refused !== undefined), 5000, 'the count line')
  const lines = logs.entries()
  t.same(lines.map((entry) => [entry.reason, entry.level, entry.refused]), [
    ['INVALID_TIMESTAMP', 30, undefined],
    ['QUEUE_FULL', 40, undefined],
    ['INVALID_TIMESTAMP', 30, 999]
  ], 'the count at the level of its reason; a reason refused once has no count line')
  refusals.flush()
  t.equal(logs.entries().length, 3, 'nothing left to flush')
})
