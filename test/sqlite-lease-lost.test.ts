import { spawn } from 'node:child_process'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import t, { type Test } from 'tap'
import { sqliteInbox, type SqliteInbox } from '../src/sqlite/inbox.js'
import { tempDir } from './inbox-contract/scenarios.js'
import { delivery, event, receiver, sleep, until } from './inbox-contract/support.js'

const LEASE_MS = 150
const ELSEWHERE = '4242:1:aaaaaaaaaaaa@another-host'

/** Holds the event loop, as a CPU-bound or synchronous handler does: no timer (and no lease renewal) runs meanwhile. */
function blockFor (ms: number): void {
  const until = Date.now() + ms
  while (Date.now() < until) { /* busy */ }
}

function setUp (t: Test): { inbox: SqliteInbox, webhooks: ReturnType<typeof receiver>, other: Database.Database, deadLetters: string[] } {
  const path = join(tempDir(t), 'inbox.db')
  const inbox = sqliteInbox({ path, leaseMs: LEASE_MS, pollIntervalMs: 20 })
  const webhooks = receiver(inbox, { retry: { attempts: 3, minDelayMs: 5, maxDelayMs: 20 } })
  t.teardown(() => webhooks.close())
  const deadLetters: string[] = []
  webhooks.onDeadLetter((letter) => { deadLetters.push(letter.event.id) })
  // Another process on the same file, as far as the inbox can tell.
  const other = new Database(path)
  t.teardown(() => { other.close() })
  return { inbox, webhooks, other, deadLetters }
}

/** What another process's claim does: the lease is its own now, and one more attempt is counted. */
function takeOver (other: Database.Database, id: string): void {
  other.prepare('UPDATE sir_webhook_events SET lease_owner = ?, lease_until = ?, attempts = attempts + 1 WHERE id = ?').run(ELSEWHERE, Date.now() + 60_000, id)
}

t.test('issue 20 item 8: a handler that blocks past its lease while another process takes the event over: recorded done, logged, not a failure', async (t) => {
  const { inbox, webhooks, other, deadLetters } = setUp(t)
  let runs = 0
  webhooks.on('action.completed', function slow (evt) {
    runs++
    takeOver(other, evt.id)
    blockFor(LEASE_MS * 3)
  })
  t.equal((await webhooks.receive(delivery(event('evt_blocking')))).code, 'ACCEPTED')
  await until(async () => (await inbox.outcome('evt_blocking'))?.state !== 'pending', 'the outcome to be recorded', 5_000)
  const outcome = await inbox.outcome('evt_blocking')
  t.equal(outcome?.state, 'done', 'its handlers succeeded: done, not left to pass between processes')
  t.match(outcome?.lastError, /^lease lost: a run took \d+ ms and its lease \(leaseMs 150\) ran out, so the event was started again elsewhere; its handlers succeeded$/)
  const warning = webhooks.log.find((entry) => entry.level === 'warn' && /lease ran out while its handlers ran here/.test(entry.msg ?? ''))
  t.match(warning?.fields, { event: { id: 'evt_blocking', type: 'action.completed' }, leaseMs: LEASE_MS, recorded: true })
  t.ok((warning?.fields.ranMs as number) >= LEASE_MS * 3, `ranMs ${String(warning?.fields.ranMs)}`)
  await sleep(LEASE_MS * 3)
  t.equal(runs, 1, 'not run again here')
  t.same(deadLetters, [], 'not dead-lettered')
  t.notOk(webhooks.log.some((entry) => entry.msg === 'handler failed; will retry' || /dead-lettered/.test(entry.msg ?? '')), 'no failure reported')
})

t.test('issue 20 item 8: when the run that took over finished first, the late run records nothing and says why', async (t) => {
  const { inbox, webhooks, other } = setUp(t)
  webhooks.on('action.completed', function slow (evt) {
    takeOver(other, evt.id)
    // The other process ran it to the end meanwhile.
    other.prepare("UPDATE sir_webhook_events SET state = 'done', finished_at = 1, lease_owner = NULL, lease_until = NULL WHERE id = ?").run(evt.id)
    blockFor(LEASE_MS * 2)
  })
  t.equal((await webhooks.receive(delivery(event('evt_finished_there')))).code, 'ACCEPTED')
  await until(() => webhooks.log.some((entry) => /another run finished it first/.test(entry.msg ?? '')), 'the late run to say so', 5_000)
  t.match(webhooks.log.find((entry) => /another run finished it first/.test(entry.msg ?? ''))?.fields, { event: { id: 'evt_finished_there' }, state: 'done' })
  const outcome = await inbox.outcome('evt_finished_there')
  t.equal(outcome?.finishedAt?.getTime(), 1, "the other run's outcome stands")
})

t.test('issue 20 item 8: a failed run that lost its lease leaves the outcome to the run that took over, and says so', async (t) => {
  const { inbox, webhooks, other, deadLetters } = setUp(t)
  webhooks.on('action.completed', function failing (evt) {
    takeOver(other, evt.id)
    blockFor(LEASE_MS * 2)
    throw new Error('downstream refused')
  })
  t.equal((await webhooks.receive(delivery(event('evt_failed_late')))).code, 'ACCEPTED')
  await until(() => webhooks.log.some((entry) => /this run failed, and the outcome is left to that run/.test(entry.msg ?? '')), 'the late run to say so', 5_000)
  const warning = webhooks.log.find((entry) => /this run failed, and the outcome is left to that run/.test(entry.msg ?? ''))
  t.match(warning?.fields, { event: { id: 'evt_failed_late' }, handler: 'failing', err: { message: 'downstream refused' }, leaseMs: LEASE_MS })
  const outcome = await inbox.outcome('evt_failed_late')
  t.equal(outcome?.state, 'pending')
  t.same(deadLetters, [])
  t.equal(other.prepare('SELECT lease_owner FROM sir_webhook_events WHERE id = ?').pluck().get('evt_failed_late'), ELSEWHERE, 'still held by the run that took over')
})

t.test('issue 20 item 8: two processes whose handler blocks the event loop past the lease run the event at most twice and record it done', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  // Creates the file first, so that both processes open a ready schema.
  await sqliteInbox({ path }).close(0)
  // Each child runs a receiver on the file; its handler holds the event loop for
  // 2.5 leases. The first child takes the delivery when told to.
  const code = `
    const { Webhooks, sign } = await import(process.env.SIR_INDEX)
    const { sqliteInbox } = await import(process.env.SIR_MODULE)
    const webhooks = new Webhooks({
      secret: 'whsec_lease', retry: { attempts: 3, minDelayMs: 5, maxDelayMs: 10 }, logger: { debug () {}, info () {}, warn () {}, error () {}, child () { return this } },
      inbox: sqliteInbox({ path: process.env.SIR_DB, leaseMs: 400, pollIntervalMs: 20 })
    })
    webhooks.on('action.completed', function blocking () {
      process.stdout.write('ran\\n')
      const until = Date.now() + 1000
      while (Date.now() < until) {}
    })
    webhooks.onDeadLetter(() => { process.stdout.write('dead-lettered\\n') })
    process.stdin.setEncoding('utf8').on('data', async (command) => {
      if (command.startsWith('accept')) {
        const rawBody = Buffer.from(JSON.stringify({ id: 'evt_blocks', type: 'action.completed', createdAt: '2026-05-10T09:12:00Z', data: {} }))
        const { timestamp, signature } = sign({ secret: 'whsec_lease', rawBody })
        const result = await webhooks.receive({ contentType: 'application/json', signature, timestamp, rawBody })
        process.stdout.write(result.code + '\\n')
      } else {
        await webhooks.close()
        process.exit(0)
      }
    })
    process.stdout.write('ready\\n')`
  const loaderArgs = process.execArgv.filter((arg) => arg.includes('@tapjs/typescript'))
  const env = { ...process.env, SIR_INDEX: new URL('../src/index.ts', import.meta.url).href, SIR_MODULE: new URL('../src/sqlite/inbox.ts', import.meta.url).href, SIR_DB: path }
  const output: string[] = []
  const children = [0, 1].map(() => {
    const child = spawn(process.execPath, [...loaderArgs, '--input-type=module', '-e', code], { env, stdio: ['pipe', 'pipe', 'inherit'] })
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { output.push(...chunk.split('\n').filter((line) => line !== '')) })
    return child
  })
  t.teardown(() => { for (const child of children) child.kill('SIGKILL') })
  const check = new Database(path, { readonly: true })
  t.teardown(() => { check.close() })
  const state = (): string | undefined => check.prepare<[], string>("SELECT state FROM sir_webhook_events WHERE id = 'evt_blocks'").pluck().get()
  // Both up before the event arrives, so that the second can take over what the first holds.
  await until(() => output.filter((line) => line === 'ready').length === 2, 'both receivers to start', 30_000)
  children[0]!.stdin.write('accept\n')
  await until(() => output.includes('ACCEPTED'), 'the delivery to be accepted', 20_000)
  await until(() => state() !== undefined && state() !== 'pending', 'an outcome', 20_000)
  // Long enough for a run started elsewhere to end, and for any further claim to show.
  await sleep(2_500)
  t.equal(state(), 'done', 'recorded done: no run failed')
  const runs = output.filter((line) => line === 'ran').length
  t.ok(runs >= 1 && runs <= 2, `ran ${runs} times (once, or once more where the lease ran out)`)
  t.notOk(output.includes('dead-lettered'), 'not dead-lettered')
  for (const child of children) child.stdin.write('stop\n')
})

t.test('an ordered event recorded done by the run that outlived its lease keeps the stale flag its handlers were told', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const inbox = sqliteInbox({ path, leaseMs: LEASE_MS, pollIntervalMs: 20 })
  const webhooks = receiver(inbox, { ordering: { key: () => 'action:one' } })
  t.teardown(() => webhooks.close())
  const other = new Database(path)
  t.teardown(() => { other.close() })
  const told: string[] = []
  webhooks.on('action.completed', function slow (evt, { ordering }) {
    told.push(`${evt.id}:${String(ordering?.stale)}`)
    if (evt.id !== 'evt_older') return
    takeOver(other, evt.id)
    blockFor(LEASE_MS * 3)
  })
  t.equal((await webhooks.receive(delivery({ ...event('evt_newer'), createdAt: '2026-05-10T09:12:09Z' }))).code, 'ACCEPTED')
  await until(async () => (await inbox.outcome('evt_newer'))?.state === 'done', 'the newer event to be handled', 5_000)
  t.equal((await webhooks.receive(delivery({ ...event('evt_older'), createdAt: '2026-05-10T09:12:01Z' }))).code, 'ACCEPTED')
  await until(async () => (await inbox.outcome('evt_older'))?.state === 'done', 'the late run to record the older event', 5_000)
  t.same(told, ['evt_newer:false', 'evt_older:true'])
  t.match(await inbox.outcome('evt_older'), { state: 'done', stale: true, lastError: /^lease lost:/ }, 'the record says what the handlers were told')
})
