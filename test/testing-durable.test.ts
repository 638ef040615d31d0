import Fastify from 'fastify'
import pg from 'pg'
import t, { type Test } from 'tap'
import { Webhooks, type AnyEvent } from '../src/index.js'
import sirWebhooks from '../src/fastify/plugin.js'
import { postgresInbox, type PostgresHandlerExtra } from '../src/postgres/inbox.js'
import { createEvent, injectDelivery } from '../src/testing/index.js'
import { captureLogs } from './helpers/logs.js'
import { freshSchema, postgresForTests } from './helpers/postgres.js'

// docs/testing.md, "With a durable inbox": the snippets, run. A handler that writes
// through `transaction`, tested through the receiver on a schema of its own, by
// waiting for the event's outcome; its rollback on a throw; and the handler alone
// in a transaction the test rolls back.

const postgres = await postgresForTests(t)
const skip = postgres.url === undefined ? `no PostgreSQL (${postgres.reason})` : false

type Receiver = Webhooks<ReturnType<typeof postgresInbox>>

/** The app's handler, as an app would export it. */
async function creditTokens (event: AnyEvent, { transaction }: PostgresHandlerExtra): Promise<void> {
  const data = event.data as { actionId: string, tokensDistributed: number }
  await transaction.query('INSERT INTO credits (event_id, action_id, tokens) VALUES ($1, $2, $3)', [event.id, data.actionId, data.tokensDistributed])
  if (data.tokensDistributed > 1000) throw new Error('over the partner limit')
}

async function handled (webhooks: Receiver, id: string, state = 'done'): Promise<{ state: string, lastError?: string | undefined }> {
  for (let tries = 0; tries < 400; tries += 1) {
    const outcome = await webhooks.inbox.outcome(id)
    if (outcome?.state === state) return outcome
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`${id} is not ${state}`)
}

async function appPool (t: Test): Promise<pg.Pool> {
  const appSchema = freshSchema('app')
  const pool = new pg.Pool({ connectionString: postgres.url, options: `-c search_path=${appSchema}` })
  await pool.query(`CREATE SCHEMA ${appSchema}`)
  await pool.query('CREATE TABLE credits (event_id text PRIMARY KEY, action_id text NOT NULL, tokens integer NOT NULL)')
  t.teardown(async () => {
    await pool.query(`DROP SCHEMA ${appSchema} CASCADE`)
    await pool.end()
  })
  return pool
}

t.test('through the receiver: credited once, a redelivery is a duplicate, a throw leaves no row', { skip }, async (t) => {
  const pool = await appPool(t)
  const schema = freshSchema()
  const webhooks = new Webhooks({
    secret: 'whsec_test',
    logger: captureLogs().logger,
    retry: { attempts: 2, minDelayMs: 1, maxDelayMs: 1 },
    inbox: postgresInbox({ pool, schema, pollIntervalMs: 50 })
  })
  webhooks.on('action.completed', creditTokens)
  const app = Fastify()
  await app.register(sirWebhooks, { webhooks })
  t.teardown(async () => {
    await app.close()
    await pool.query(`DROP SCHEMA ${schema} CASCADE`)
  })

  const event = createEvent('action.completed', { actionId: 'act_1', tokensDistributed: 50 })
  t.equal((await injectDelivery(app, event, { secret: 'whsec_test' })).statusCode, 200)
  await handled(webhooks, event.id)
  const again = await injectDelivery(app, event, { secret: 'whsec_test' })
  t.match(again.json(), { duplicate: true })
  t.same((await pool.query('SELECT tokens FROM credits WHERE event_id = $1', [event.id])).rows, [{ tokens: 50 }])

  const tooMany = createEvent('action.completed', { actionId: 'act_2', tokensDistributed: 5000 })
  t.equal((await injectDelivery(app, tooMany, { secret: 'whsec_test' })).statusCode, 200)
  const dead = await handled(webhooks, tooMany.id, 'dead')
  t.match(dead.lastError, /creditTokens: Error: over the partner limit/)
  t.same((await pool.query('SELECT tokens FROM credits WHERE event_id = $1', [tooMany.id])).rows, [], 'the INSERT before the throw was rolled back')
})

t.test('the handler on its own, in a transaction the test rolls back', { skip }, async (t) => {
  const pool = await appPool(t)
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    await creditTokens(createEvent('action.completed', { tokensDistributed: 5 }), { transaction: client })
    t.same((await client.query('SELECT tokens FROM credits')).rows, [{ tokens: 5 }])
  } finally {
    await client.query('ROLLBACK')
    client.release()
  }
  t.same((await pool.query('SELECT tokens FROM credits')).rows, [], 'nothing left behind')
})
