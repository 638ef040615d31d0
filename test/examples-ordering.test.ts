import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isDeepStrictEqual } from 'node:util'
import t, { type Test } from 'tap'
import { sign } from '../src/index.js'
import type { DeliveryRecord } from '../src/testing/index.js'
import { ensureBuilt, runCli } from './cli/helpers.js'
import { until } from './inbox-contract/support.js'

// examples/ordering: the ledger of docs/ordering.md stays right when an action's
// completion is delivered after its reversal, and twice.
ensureBuilt()

const SECRET = 'whsec_local_development_only'

/** Starts the example on a free port: its ledger's URL and its webhook route. */
async function startExample (t: Test): Promise<{ child: ChildProcess, ledgerUrl: string, url: string }> {
  const script = fileURLToPath(new URL('../examples/ordering/server.js', import.meta.url))
  const child = spawn(process.execPath, [script], { env: { ...process.env, PORT: '0', INTERNAL_PORT: '0', SIR_WEBHOOK_SECRET: '', LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let output = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  await until(() => /^ledger: (http:\S+)/m.test(output), 'the example to listen', 20_000)
  const ledgerUrl = (/^ledger: (http:\S+)/m.exec(output) as RegExpExecArray)[1] as string
  return { child, ledgerUrl, url: ledgerUrl.replace(/\/ledger$/, '/webhooks/sir') }
}

t.test('examples/ordering: a late action.completed after its action.reversed is not credited', async (t) => {
  const { child, ledgerUrl, url } = await startExample(t)
  const post = async (body: object): Promise<number> => {
    const raw = JSON.stringify(body)
    const signed = sign({ secret: SECRET, rawBody: raw })
    const response = await fetch(url, { method: 'POST', body: raw, headers: { 'content-type': 'application/json', 'x-sir-signature': signed.signature, 'x-sir-timestamp': signed.timestamp } })
    await response.arrayBuffer()
    return response.status
  }
  const id = `${process.pid}_${Date.now()}`
  const completed = { id: `evt_done_${id}`, type: 'action.completed', createdAt: '2026-05-10T09:12:00Z', data: { actionId: `act_${id}`, tokensDistributed: 50 } }
  const reversed = { id: `evt_rev_${id}`, type: 'action.reversed', createdAt: '2026-05-10T09:15:00Z', data: { actionId: `act_${id}` } }
  const other = { id: `evt_other_${id}`, type: 'action.completed', createdAt: '2026-05-10T09:13:00Z', data: { actionId: `act_other_${id}`, tokensDistributed: 7 } }
  t.equal(await post(reversed), 200)
  t.equal(await post(other), 200)
  t.equal(await post(completed), 200, 'the completion, delivered late')
  t.equal(await post(completed), 200, 'and again')
  let ledger: { credited?: number, byStatus?: Record<string, number>, ordering?: { stale: number } } = {}
  await until(async () => {
    ledger = await (await fetch(ledgerUrl)).json() as typeof ledger
    return ledger.ordering?.stale === 1
  }, 'the late completion to be handled')
  t.equal(ledger.credited, 7, 'only the action that was not reversed is credited')
  t.same(ledger.byStatus, { reversed: 1, completed: 1 })
  child.kill('SIGTERM')
})

t.test('examples/ordering under `sir-webhooks simulate --out-of-order 0.3 --duplicates 0.2`: each action ends as its newest event says', async (t) => {
  const { child, ledgerUrl, url } = await startExample(t)
  const directory = mkdtempSync(join(tmpdir(), 'sir-ordering-simulate-'))
  t.teardown(() => rmSync(directory, { recursive: true, force: true }))
  const file = join(directory, 'history.json')
  // Seed 27 plans five actions with a reversal after their completion; three of
  // those are sent reversal first, and three have an event sent twice.
  const result = await runCli(['simulate', '--url', url, '--secret', SECRET, '--events', '40', '--rate', '40', '--seed', '27',
    '--types', 'action.completed,action.reversed,action.failed,transaction.completed', '--out-of-order', '0.3', '--duplicates', '0.2', '--json', file])
  t.equal(result.code, 0, 'every delivery accepted')
  const { deliveries } = JSON.parse(readFileSync(file, 'utf8')) as { deliveries: DeliveryRecord[] }
  // The history, by action: each event once, in the order its first delivery started.
  const byAction = new Map<string, DeliveryRecord[]>()
  for (const delivery of deliveries) {
    const actionId = delivery.data.actionId
    if (delivery.duplicate || !delivery.type.startsWith('action.') || typeof actionId !== 'string') continue
    byAction.set(actionId, [...byAction.get(actionId) ?? [], delivery])
  }
  const shared = [...byAction.values()].filter((events) => events.length > 1)
  t.ok(shared.length >= 3, `actions with more than one event (${shared.length})`)
  t.ok(shared.every((events) => events.some(({ type }) => type === 'action.completed') && events.some(({ type }) => type === 'action.reversed')),
    'each a completion and its reversal')
  const sentNewestFirst = shared.filter((events) => Date.parse(events[0]?.createdAt ?? '') > Date.parse(events[1]?.createdAt ?? ''))
  t.ok(sentNewestFirst.length >= 1, `some sent reversal first (${sentNewestFirst.length})`)
  const ids = new Set(shared.flat().map(({ eventId }) => eventId))
  t.ok(deliveries.some((delivery) => delivery.duplicate && ids.has(delivery.eventId)), 'and some of their events sent twice')
  // Credited exactly when the action's newest event (by createdAt) is its completion, with its tokensDistributed.
  const expected: Record<string, { status: string, credited: number }> = {}
  for (const [actionId, events] of byAction) {
    const newest = [...events].sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt))[0] as DeliveryRecord
    expected[actionId] = newest.type === 'action.completed'
      ? { status: 'completed', credited: newest.data.tokensDistributed as number }
      : { status: newest.type === 'action.reversed' ? 'reversed' : 'failed', credited: 0 }
  }
  let actions: unknown
  // Waits for the last events to be handled; a ledger that never matches is shown by the assertion below.
  await until(async () => {
    actions = await (await fetch(`${ledgerUrl}/actions`)).json()
    return isDeepStrictEqual(actions, expected)
  }, 'every action to be settled', 20_000).catch(() => {})
  t.same(actions, expected, 'the ledger, action by action')
  child.kill('SIGTERM')
})
