import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { PassThrough } from 'node:stream'
import t, { type Test } from 'tap'
import { Webhooks } from '../../src/index.js'
import { bullmqInbox } from '../../src/bullmq/inbox.js'
import { sqliteInbox } from '../../src/sqlite/inbox.js'
import { postgresInbox } from '../../src/postgres/inbox.js'
import type { Inbox } from '../../src/core/inbox.js'
import { freshSchema, postgresForTests } from '../helpers/postgres.js'
import { runPause } from '../../src/cli/inbox-flow.js'
import type { OperatorInbox } from '../../src/cli/inbox-stores.js'
import { captureLogs } from '../helpers/logs.js'
import { SECRET, actionCompleted, eventually } from '../helpers/deliveries.js'
import { redisForTests } from '../helpers/redis.js'
import { delivery } from '../replay/scenario.js'
import { ensureBuilt, runCli } from './helpers.js'

ensureBuilt()

/**
 * A receiver running on `inbox`; the CLI, on the same store, pauses every
 * handler, then one by name, and resumes: the receiver stops running within
 * about a second, still accepts, and drains on resume.
 */
async function pauseAndResume (t: Test, store: string[], inbox: Inbox, scope: string): Promise<void> {
  const ran: string[] = []
  const webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger, inbox })
  t.teardown(() => webhooks.close())
  webhooks.on('action.completed', function credit (event) { ran.push(`credit ${event.id}`) })
  webhooks.on('action.completed', function audit (event) { ran.push(`audit ${event.id}`) })
  const warmup = actionCompleted()
  t.equal((await webhooks.receive(delivery(warmup))).code, 'ACCEPTED')
  await eventually(() => ran.length === 2, 20_000, 'the first event to run')

  const paused = await runCli(['inbox', 'pause', ...store])
  t.equal(paused.code, 0, paused.stderr)
  t.equal(paused.stdout.split('\n')[0], `paused every handler on every receiver of this store (${scope}): deliveries are still accepted; runs wait until "inbox resume"`)
  await eventually(() => webhooks.health().status === 'paused', 10_000, 'the receiver to see the pause')
  const held = actionCompleted()
  const heldAt = Date.now()
  t.equal((await webhooks.receive(delivery(held))).code, 'ACCEPTED', 'a delivery while paused is still accepted')
  await new Promise((resolve) => setTimeout(resolve, 1_500))
  t.same(ran, [`credit ${warmup.id}`, `audit ${warmup.id}`], 'no handler ran while paused')
  const stats = JSON.parse((await runCli(['inbox', 'stats', '--json', ...store])).stdout) as Record<string, unknown>
  t.match(stats, { pending: 1, done: 1, dead: 0, paused: { all: true, handlers: [] } }, 'inbox stats says what is paused')
  if (!('events' in webhooks.inbox)) t.notOk('oldestWaitingMs' in stats, 'a store that cannot list events leaves the age out rather than say none waits')
  else {
    // The held event is the one waiting: its age counts from its receipt, 1.5 s ago.
    t.ok(Math.abs(Date.parse(String(stats.oldestWaitingReceivedAt)) - heldAt) < 1_000, 'the oldest waiting event is the held one')
    t.ok(Number(stats.oldestWaitingMs) >= 1_000, `its age counts from then (${String(stats.oldestWaitingMs)} ms)`)
  }

  const resumed = await runCli(['inbox', 'resume', ...store])
  t.equal(resumed.code, 0, resumed.stderr)
  t.match(resumed.stdout, /^resumed every handler: the waiting runs drain/)
  await eventually(() => ran.length === 4, 20_000, 'the held event to run after resume')
  await eventually(() => webhooks.health().status === 'ok', 10_000, 'health back to ok')

  // One handler by name: the other keeps running.
  t.equal((await runCli(['inbox', 'pause', '--handler', 'credit', ...store])).code, 0)
  await eventually(() => webhooks.health().status === 'paused', 10_000, 'the receiver to see the pause of credit')
  t.match(webhooks.health().reasons, [/handler "credit" is paused/])
  const one = actionCompleted()
  t.equal((await webhooks.receive(delivery(one))).code, 'ACCEPTED')
  await eventually(() => ran.includes(`audit ${one.id}`), 20_000, 'audit to run')
  await new Promise((resolve) => setTimeout(resolve, 1_000))
  t.notOk(ran.includes(`credit ${one.id}`), 'credit, paused, did not run')
  t.match(JSON.parse((await runCli(['inbox', 'stats', '--json', ...store])).stdout), { paused: { all: false, handlers: ['credit'] } })
  t.equal((await runCli(['inbox', 'resume', '--handler', 'credit', ...store])).code, 0)
  await eventually(() => ran.includes(`credit ${one.id}`), 20_000, 'credit to run after resume')
}

t.test('BullMQ: inbox pause stops a running receiver\'s handlers, deliveries still accepted; resume drains', async (t) => {
  const redis = await redisForTests(t)
  if (redis.url === undefined) return t.comment(`skipped, needs Redis: ${redis.reason}`)
  const queueName = `cli-pause-${randomUUID()}`
  await pauseAndResume(t, ['--store', redis.url, '--queue', queueName], bullmqInbox({ connection: redis.connection, queueName }), 'Redis')
})

t.test('SQLite: inbox pause stops a running receiver on the file, deliveries still accepted; resume drains', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sir-cli-pause-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const path = join(dir, 'inbox.db')
  await pauseAndResume(t, ['--store', `sqlite:${path}`], sqliteInbox({ path, pollIntervalMs: 50 }), 'this SQLite file')
})

t.test('Postgres: inbox pause stops a running receiver on the schema, deliveries still accepted; resume drains', async (t) => {
  const server = await postgresForTests(t)
  if (server.url === undefined) return t.comment(`skipped, needs PostgreSQL: ${server.reason}`)
  const schema = freshSchema()
  await pauseAndResume(t, ['--store', server.url, '--schema', schema], postgresInbox({ connectionString: server.url, schema, pollIntervalMs: 50 }), `Postgres schema ${schema}`)
})

t.test('a store without flow control: pause and resume say so and exit 1, changing nothing', async (t) => {
  const inbox = { counts: async () => ({ pending: 0, done: 0, dead: 0 }) } as unknown as OperatorInbox
  for (const paused of [true, false]) {
    const stderr = new PassThrough()
    let written = ''
    stderr.on('data', (chunk: Buffer) => { written += chunk.toString() })
    const io = { stdout: new PassThrough(), stderr, stdin: new PassThrough(), env: {} }
    t.equal(await runPause(inbox, paused, undefined, io, () => { t.fail('nothing is shown') }), 1)
    t.equal(written, `sir-webhooks inbox ${paused ? 'pause' : 'resume'}: this store has no flow control (its inbox offers no flowStore()), so nothing can be paused from here; nothing was changed\n`)
  }
})

t.test('SQLite: inbox stats gives the oldest waiting event\'s age', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sir-cli-stats-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const path = join(dir, 'inbox.db')
  // No handler: an accept-only receiver leaves its events pending.
  const webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger, inbox: sqliteInbox({ path }) })
  t.teardown(() => webhooks.close())
  const empty = JSON.parse((await runCli(['inbox', 'stats', '--json', '--store', `sqlite:${path}`])).stdout) as Record<string, unknown>
  t.match(empty, { pending: 0, oldestWaitingMs: null })
  const before = Date.now()
  t.equal((await webhooks.receive(delivery(actionCompleted()))).code, 'ACCEPTED')
  await new Promise((resolve) => setTimeout(resolve, 1_100))
  t.equal((await webhooks.receive(delivery(actionCompleted()))).code, 'ACCEPTED')
  const stats = JSON.parse((await runCli(['inbox', 'stats', '--json', '--store', `sqlite:${path}`])).stdout) as { pending: number, oldestWaitingMs: number, oldestWaitingReceivedAt: string }
  t.equal(stats.pending, 2)
  t.ok(Date.parse(stats.oldestWaitingReceivedAt) >= before && Date.parse(stats.oldestWaitingReceivedAt) < before + 1_000, 'the first event is the oldest')
  t.ok(stats.oldestWaitingMs >= 1_000, `its age counts from then (${stats.oldestWaitingMs} ms)`)
  const text = await runCli(['inbox', 'stats', '--store', `sqlite:${path}`])
  t.match(text.stdout, /\noldest waiting {2}\ds \(received \d{4}-\d\d-\d\dT[^)]+\)\n/)
})

t.test('SQLite: inbox stats counts the events waiting on flow control, by handler and reason', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sir-cli-waiting-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const path = join(dir, 'inbox.db')
  const webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger, inbox: sqliteInbox({ path, pollIntervalMs: 50 }) })
  t.teardown(() => webhooks.close())
  const ran: string[] = []
  // One run every 100 s: the first event runs, the next two wait for tokens.
  webhooks.on('action.completed', function callPartner (event) { ran.push(event.id) }, { rate: { perSecond: 0.01 } })
  const store = ['--store', `sqlite:${path}`]
  t.match(JSON.parse((await runCli(['inbox', 'stats', '--json', ...store])).stdout), { waiting: [] }, 'none waiting yet')
  for (let index = 0; index < 3; index++) t.equal((await webhooks.receive(delivery(actionCompleted()))).code, 'ACCEPTED')
  await eventually(() => ran.length === 1, 20_000, 'the first event to run')
  for (const deadline = Date.now() + 20_000; (await webhooks.inbox.waiting?.())?.[0]?.events !== 2;) {
    if (Date.now() > deadline) throw new Error('the other two were not deferred within 20 s')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const stats = JSON.parse((await runCli(['inbox', 'stats', '--json', ...store])).stdout) as Record<string, unknown>
  t.same(stats.waiting, [{ handler: 'callPartner', reason: 'rate', events: 2 }])
  t.match((await runCli(['inbox', 'stats', ...store])).stdout, /\ndeferred {8}callPartner: 2 rate\n$/)
})
