import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { sqliteInbox } from '../../src/sqlite/inbox.js'
import { bullmqInbox } from '../../src/bullmq/inbox.js'
import { postgresInbox } from '../../src/postgres/inbox.js'
import { freshSchema, postgresForTests } from '../helpers/postgres.js'
import { redisForTests } from '../helpers/redis.js'
import { replayReceiver, runsReach, settled, type DurableInbox } from '../replay/scenario.js'
import { ensureBuilt, runCli } from './helpers.js'

ensureBuilt()

/**
 * An operator's replay through the CLI while a receiver runs on the store:
 * counts first, --dry-run touches nothing, more than one needs --yes, dead
 * events are re-driven (the handler that succeeded is not run again), done
 * events replayed (only --handler's, or all), narrowed by type, time and handler.
 */
async function redriveByFilter (t: Test, store: string[], inbox: DurableInbox): Promise<void> {
  const { broken, runs, send } = replayReceiver(t, inbox)
  const first = await send(3)
  await settled(inbox, first, 'dead')
  await new Promise((resolve) => setTimeout(resolve, 5))
  const between = new Date()
  await new Promise((resolve) => setTimeout(resolve, 5))
  const second = await send(2)
  const [pool] = await send(1, 'token_pool.low_balance')
  await settled(inbox, [...second], 'dead')
  await settled(inbox, [pool!], 'done')
  const cli = async (...args: string[]): ReturnType<typeof runCli> => await runCli(['inbox', 'redrive', ...args, ...store])

  const dry = await cli('--state', 'dead', '--dry-run')
  t.equal(dry.code, 0, dry.stderr)
  t.equal(dry.stdout, 'would re-drive 5 dead event(s); touched nothing (dry run)\n')
  t.match(await inbox.counts(), { pending: 0, done: 1, dead: 5 }, 'the dry run touched nothing')

  const unconfirmed = await cli('--state', 'dead', '--until', between.toISOString())
  t.equal(unconfirmed.code, 2, 'three match and no --yes outside a terminal')
  t.equal(unconfirmed.stderr, `sir-webhooks inbox redrive: this would re-drive 3 dead event(s) received before ${between.toISOString()}: add --yes to go ahead, or --dry-run to only count; nothing was queued\n`)
  t.match(await inbox.counts(), { dead: 5 }, 'nothing was queued')

  broken.credit = false
  const older = await cli('--state', 'dead', '--until', between.toISOString(), '--yes', '--json')
  t.equal(older.code, 0, older.stderr)
  t.same(JSON.parse(older.stdout), { state: 'dead', until: between.toISOString(), matched: 3, requeued: 3 })
  await settled(inbox, first, 'done')
  for (const id of first) t.same([runs('credit', id), runs('audit', id)], [2, 1], 'credit ran again, audit (which had succeeded) did not')

  const none = await cli('--state', 'dead', '--handler', 'audit')
  t.equal(none.code, 0, none.stderr)
  t.equal(none.stdout, 'no dead event(s) that audit did not handle to re-drive; nothing was queued\n')
  const credit = await cli('--state', 'dead', '--handler', 'credit', '--since', between.toISOString(), '--yes')
  t.equal(credit.code, 0, credit.stderr)
  t.equal(credit.stdout, `re-drove 2 dead event(s) received since ${between.toISOString()} that credit did not handle: queued again, attempts reset; handlers that had succeeded do not run again\n`)
  await settled(inbox, second, 'done')

  const one = await cli('--state', 'done', '--type', 'token_pool.low_balance')
  t.equal(one.code, 0, 'one event needs no --yes')
  t.equal(one.stdout, 'replayed 1 done event(s) of type token_pool.low_balance: queued again, every handler of each runs again\n')
  await runsReach(() => runs('audit', pool!), 2, 'the done event to run again')

  const audit = await cli('--state', 'done', '--type', 'action.completed', '--since', between.toISOString(), '--handler', 'audit', '--yes')
  t.equal(audit.code, 0, audit.stderr)
  t.match(audit.stdout, /^replayed 2 done event\(s\) of type action\.completed received since \S+ \(handler audit only\): queued again, only audit runs again\n$/)
  for (const id of second) {
    await runsReach(() => runs('audit', id), 2, 'audit to run again')
    t.equal(runs('credit', id), 2, 'credit, not named, did not run again')
  }
  await settled(inbox, [...first, ...second, pool!], 'done')
  t.match(await inbox.counts(), { pending: 0, done: 6, dead: 0 })
}

t.test('SQLite: inbox redrive by filter', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sir-cli-replay-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const path = join(dir, 'inbox.db')
  await redriveByFilter(t, ['--store', `sqlite:${path}`], sqliteInbox({ path, pollIntervalMs: 50 }))
})

t.test('Postgres: inbox redrive by filter', async (t) => {
  const server = await postgresForTests(t)
  if (server.url === undefined) return t.comment(`skipped, needs PostgreSQL: ${server.reason}`)
  const schema = freshSchema()
  await redriveByFilter(t, ['--store', server.url, '--schema', schema], postgresInbox({ connectionString: server.url, schema, pollIntervalMs: 50 }))
})

t.test('Redis (BullMQ): inbox redrive by filter', async (t) => {
  const redis = await redisForTests(t)
  if (redis.url === undefined) return t.comment(`skipped, needs Redis: ${redis.reason}`)
  const queueName = `cli-replay-${randomUUID()}`
  await redriveByFilter(t, ['--store', redis.url, '--queue', queueName], bullmqInbox({ connection: redis.connection, queueName }))
})
