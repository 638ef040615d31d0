import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { DeliveryRecord, SimulationSummary } from '../../src/testing/index.js'
import { ensureBuilt, fixtureLines, runCli, startFixtureReceiver, startListen, type FixtureOptions } from './helpers.js'

ensureBuilt()

const secret = 'whsec_c2ltdWxhdGUtc2VjcmV0'

interface History { summary: SimulationSummary, deliveries: DeliveryRecord[] }

async function receiver (t: Test, options: Omit<FixtureOptions, 'secret'>) {
  const running = await startFixtureReceiver({ secret, ...options })
  t.teardown(() => running.stop())
  return running
}

function historyFile (t: Test): string {
  const directory = mkdtempSync(join(tmpdir(), 'sir-cli-simulate-'))
  t.teardown(() => rmSync(directory, { recursive: true, force: true }))
  return join(directory, 'history.json')
}

function readHistory (file: string): History {
  return JSON.parse(readFileSync(file, 'utf8')) as History
}

function handledCounts (lines: ReturnType<typeof fixtureLines>): Map<string, number> {
  const counts = new Map<string, number>()
  for (const line of lines) if (line.handled !== undefined) counts.set(line.handled.id, (counts.get(line.handled.id) ?? 0) + 1)
  return counts
}

t.test('a receiver answering 503 (full queue, slow handler): the simulator retries with backoff until each event is in', async (t) => {
  // One event at a time and a slow handler: every delivery that arrives while one runs gets 503.
  const target = await receiver(t, { maxQueueSize: 1, concurrency: 1, handlerDelayMs: 600 })
  const file = historyFile(t)
  const result = await runCli(['simulate', '--url', target.url, '--secret', secret, '--events', '4', '--rate', '20',
    '--duplicates', '0', '--out-of-order', '0', '--retry-schedule', '200ms,400ms,800ms,1600ms,3200ms,6400ms', '--json', file])
  t.equal(result.code, 0, 'every delivery accepted in the end: exit 0')
  t.equal(result.stderr, '', 'no progress bar when stderr is not a terminal')
  t.match(result.stdout, /^delivered\s+4$/m)
  t.match(result.stdout, /^given up\s+0$/m)
  t.match(result.stdout, /^latency p50\s+\d+\.\d ms$/m)
  t.match(result.stdout, /^latency p99\s+\d+\.\d ms$/m)
  t.match(result.stdout, `history written to ${file}`)

  const history = readHistory(file)
  t.equal(history.deliveries.length, 4)
  const retried = history.deliveries.filter((delivery) => delivery.attempts.length > 1)
  t.ok(retried.length >= 1, 'some deliveries needed more than one attempt')
  t.equal(history.summary.retried, retried.length)
  for (const delivery of history.deliveries) {
    t.equal(delivery.outcome, 'delivered')
    const statuses = delivery.attempts.map((attempt) => attempt.status)
    t.equal(statuses.at(-1), 200, 'the last attempt was accepted')
    t.ok(statuses.slice(0, -1).every((status) => status === 503), 'every earlier attempt was a 503')
    for (const attempt of delivery.attempts) {
      const sentAt = Math.floor(Date.parse(attempt.sentAt) / 1000)
      t.ok(Math.abs(Number(attempt.timestamp) - sentAt) <= 1, 'each attempt is signed afresh with the time it is sent')
      if (attempt.status === 503) {
        t.equal(attempt.error, 'QUEUE_FULL')
        t.equal(attempt.retryAfter, '1')
      }
    }
    for (let index = 1; index < delivery.attempts.length; index++) {
      const gap = Date.parse((delivery.attempts[index] as { sentAt: string }).sentAt) - Date.parse((delivery.attempts[index - 1] as { sentAt: string }).sentAt)
      t.ok(gap >= 200 * 2 ** (index - 1), `retry ${index} waited at least its backoff (${gap} ms)`)
    }
  }

  await target.stop()
  const lines = fixtureLines(target)
  t.ok(lines.some((line) => line.answer?.status === 503 && line.answer.code === 'QUEUE_FULL'), 'the receiver did answer 503')
  const handled = handledCounts(lines)
  t.equal(handled.size, 4, 'every event was handled')
  t.ok([...handled.values()].every((count) => count === 1), 'and each exactly once')
})

t.test('a receiver that answers slowly: the simulator times out, retries, and the receiver sees a duplicate it does not handle twice', async (t) => {
  const target = await receiver(t, { slowFirstAnswerMs: 3000 })
  const file = historyFile(t)
  const result = await runCli(['simulate', '--url', target.url, '--secret', secret, '--events', '3', '--rate', '20',
    '--duplicates', '0', '--timeout', '1000', '--retry-schedule', '100ms,200ms,400ms', '--json', file])
  t.equal(result.code, 0)
  t.match(result.stdout, /^retried\s+3$/m)
  t.match(result.stdout, /timeout×3/)
  const history = readHistory(file)
  for (const delivery of history.deliveries) {
    t.same(delivery.attempts.map((attempt) => attempt.status), [null, 200])
    t.equal(delivery.attempts[0]?.error, 'timeout')
    t.equal(delivery.attempts[1]?.duplicate, true, 'the retry was acknowledged as a duplicate')
  }
  await target.stop()
  const lines = fixtureLines(target)
  t.equal(lines.filter((line) => line.answer?.code === 'ACCEPTED').length, 3)
  t.equal(lines.filter((line) => line.answer?.code === 'DUPLICATE').length, 3)
  const handled = handledCounts(lines)
  t.equal(handled.size, 3)
  t.ok([...handled.values()].every((count) => count === 1), 'each event handled once despite two deliveries')
})

t.test('--duplicates and --out-of-order: a share sent twice and out of order, deduplicated by the receiver', async (t) => {
  const target = await receiver(t, {})
  const file = historyFile(t)
  const result = await runCli(['simulate', '--url', target.url, '--secret', secret, '--events', '5', '--rate', '50',
    '--duplicates', '100%', '--out-of-order', '1', '--seed', '7', '--json', file])
  t.equal(result.code, 0)
  t.match(result.stdout, /^deliveries\s+10 \(5 events, 5 duplicates, [1-5] out of order\)$/m)
  const history = readHistory(file)
  t.equal(history.deliveries.filter((delivery) => delivery.duplicate).length, 5)
  t.ok(history.deliveries.some((delivery) => delivery.outOfOrder), 'some were sent after later events')
  await target.stop()
  const lines = fixtureLines(target)
  t.equal(lines.filter((line) => line.answer?.code === 'DUPLICATE').length, 5, 'the receiver acknowledged each duplicate')
  const handled = handledCounts(lines)
  t.equal(handled.size, 5)
  t.ok([...handled.values()].every((count) => count === 1))
})

t.test('deliveries that never succeed are given up after the schedule: exit 1', async (t) => {
  const listener = await startListen(['--secret', secret])
  t.teardown(() => listener.stop())
  const result = await runCli(['simulate', '--url', listener.url, '--secret', 'whsec_wrong', '--events', '2', '--rate', '50', '--duplicates', '0', '--retry-schedule', '50ms,50ms'])
  t.equal(result.code, 1)
  t.match(result.stdout, /^given up\s+2$/m)
  t.match(result.stdout, /^attempts\s+6$/m)
  t.match(result.stdout, /401×6/)
})

t.test('--skew signs with a clock that is off: the receiver refuses it', async (t) => {
  const listener = await startListen(['--secret', secret])
  t.teardown(() => listener.stop())
  const result = await runCli(['simulate', '--url', listener.url, '--secret', secret, '--events', '1', '--duplicates', '0', '--skew=-900', '--retry-schedule', 'none'])
  t.equal(result.code, 1)
  t.match(result.stdout, /^given up\s+1$/m)
  await listener.waitFor((line) => line.startsWith('✗ 401 TIMESTAMP_OUT_OF_RANGE'))
  await listener.waitFor((line) => /Clock skew of 90\d seconds/.test(line))
})
