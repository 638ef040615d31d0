import t, { type Test } from 'tap'
import pg from 'pg'
import { postgresInbox } from '../src/postgres/inbox.js'
import { freshSchema, postgresForTests } from './helpers/postgres.js'
import { dryRunScenario, largeReplayScenario, requeueCapScenario, requeueResetsRetryLaterScenario, requeueScenario, replayReceiver, settled } from './replay/scenario.js'

async function database (t: Test): Promise<string | undefined> {
  const server = await postgresForTests(t)
  if (server.url === undefined) t.comment(`skipped, needs PostgreSQL: ${server.reason}`)
  return server.url
}

t.test('Postgres: countMatching and requeue by state, type, time and handler', async (t) => {
  const url = await database(t)
  if (url === undefined) return
  await requeueScenario(t, postgresInbox({ connectionString: url, schema: freshSchema(), pollIntervalMs: 50 }))
})

t.test('Postgres: replay({ dryRun: true }) runs the current handlers and leaves the events as they were', async (t) => {
  const url = await database(t)
  if (url === undefined) return
  await dryRunScenario(t, postgresInbox({ connectionString: url, schema: freshSchema(), pollIntervalMs: 50 }))
})

t.test('Postgres: a dry run\'s writes through transaction are rolled back, whether the handler throws or not', async (t) => {
  const url = await database(t)
  if (url === undefined) return
  const schema = freshSchema()
  const admin = new pg.Pool({ connectionString: url, max: 2 })
  t.teardown(() => admin.end())
  await admin.query(`CREATE SCHEMA IF NOT EXISTS ${schema}; CREATE TABLE ${schema}.credits (event_id text, handler text)`)
  const inbox = postgresInbox({ connectionString: url, schema, pollIntervalMs: 50 })
  const { webhooks, broken, send } = replayReceiver(t, inbox)
  const ids = await send(2)
  await settled(inbox, ids, 'dead')
  const credits = async (): Promise<number> => Number((await admin.query<{ n: string }>(`SELECT count(*) AS n FROM ${schema}.credits`)).rows[0]?.n)
  let throwAfterWrite = true
  webhooks.on('action.completed', async function ledger (event, { transaction }) {
    await transaction.query(`INSERT INTO ${schema}.credits VALUES ($1, 'ledger')`, [event.id])
    if (throwAfterWrite) throw new Error('ledger refused')
  })
  broken.credit = false

  const thrown = await webhooks.replay({ state: 'dead', handler: 'ledger' }, { dryRun: true })
  t.same(thrown.map(({ outcome, error }) => ({ outcome, error })), [{ outcome: 'failed', error: 'Error: ledger refused' }, { outcome: 'failed', error: 'Error: ledger refused' }])
  throwAfterWrite = false
  const passed = await webhooks.replay({ state: 'dead', handler: 'ledger' }, { dryRun: true })
  t.same(passed, ids.map((id) => ({ id, handler: 'ledger', outcome: 'succeeded' })), 'each run answered, oldest event first')
  t.equal(await credits(), 0, 'no row written by a dry run is there after, thrown or not')
  for (const id of ids) t.match(await inbox.outcome(id), { state: 'dead', attempts: 1 }, 'the event state is unchanged')
  t.equal(await inbox.countMatching({ state: 'dead', handler: 'ledger' }), 2, 'no handled mark was written either')

  // The real replay commits the handler's write with its mark, once.
  t.equal(await webhooks.replay({ state: 'dead', handler: 'ledger' }), 2)
  await settled(inbox, ids, 'done')
  t.equal(await credits(), 2, 'the replay wrote each row once')

  // A replay of done events for ledger: its mark is deleted, and its new run's
  // write commits with its new mark, in the claiming transaction.
  t.equal(await webhooks.replay({ state: 'done', handler: 'ledger' }), 2)
  await eventually(async () => await credits() === 4, 'the replayed ledger runs to commit')
  await settled(inbox, ids, 'done')
  t.equal(await credits(), 4, 'one more row per event, no more')
  const marks = await admin.query<{ handler: string, n: string }>(`SELECT handler, count(*) AS n FROM ${schema}.handled WHERE handler = 'ledger' GROUP BY handler`)
  t.same(marks.rows, [{ handler: 'ledger', n: '2' }], 'one ledger mark per event, written again')
})

async function eventually (predicate: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 20_000
  while (!await predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

t.test('Postgres: a replay larger than a batch replays each event once', async (t) => {
  const url = await database(t)
  if (url === undefined) return
  await largeReplayScenario(t, postgresInbox({ connectionString: url, schema: freshSchema(), pollIntervalMs: 50 }))
})

t.test('Postgres: a requeue of dead events starts the RetryLater bound afresh', async (t) => {
  const url = await database(t)
  if (url === undefined) return
  await requeueResetsRetryLaterScenario(t, postgresInbox({ connectionString: url, schema: freshSchema(), pollIntervalMs: 50 }))
})

t.test('Postgres: requeue({ max }) queues no more than the confirmed count', async (t) => {
  const url = await database(t)
  if (url === undefined) return
  await requeueCapScenario(t, postgresInbox({ connectionString: url, schema: freshSchema(), pollIntervalMs: 50 }))
})
