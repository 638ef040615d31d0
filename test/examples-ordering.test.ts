import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { sign } from '../src/index.js'
import { ensureBuilt } from './cli/helpers.js'
import { until } from './inbox-contract/support.js'

// examples/ordering: the ledger of docs/ordering.md stays right when an action's
// completion is delivered after its reversal, and twice.
ensureBuilt()

const SECRET = 'whsec_local_development_only'

t.test('examples/ordering: a late action.completed after its action.reversed is not credited', async (t) => {
  const script = fileURLToPath(new URL('../examples/ordering/server.js', import.meta.url))
  const child = spawn(process.execPath, [script], { env: { ...process.env, PORT: '0', INTERNAL_PORT: '0', SIR_WEBHOOK_SECRET: '', LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  await until(() => /^ledger: (http:\S+)/m.test(output), 'the example to listen', 20_000)
  const ledgerUrl = (/^ledger: (http:\S+)/m.exec(output) as RegExpExecArray)[1] as string
  const url = ledgerUrl.replace(/\/ledger$/, '/webhooks/sir')
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
