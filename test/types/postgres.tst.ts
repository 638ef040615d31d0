// The Postgres inbox as docs/deployment.md shows it: `transaction` in the handler's
// context, typed from the inbox, used directly and through Kysely.
import pg, { type PoolClient } from 'pg'
import { Kysely, PostgresDialect } from 'kysely'
import { describe, expect, test } from 'tstyche'
import { Webhooks, type HandlerContext, type InboxContext } from 'sir-webhooks'
import { postgresInbox, type PostgresHandlerExtra, type PostgresInbox } from 'sir-webhooks/postgres'
import { sqliteInbox } from 'sir-webhooks/sqlite'

interface Database {
  credits: { user_id: string, tokens: number, event_id: string }
}

/** Kysely on the inbox's transaction: every query runs on that one client, and the inbox commits. */
function kyselyOn (transaction: PostgresHandlerExtra['transaction']): Kysely<Database> {
  const client = { query: transaction.query.bind(transaction), release () {} }
  // `options`: required by Kysely 0.29's types, unknown to 0.28's; a variable, so both compile.
  const pool = { connect: async () => client, end: async () => {}, options: {} }
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })
}

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL })
const webhooks = new Webhooks({ secret: 'whsec_example', inbox: postgresInbox({ pool }) })

describe('a Postgres inbox', () => {
  test('gives its handlers `transaction`, a pg client', () => {
    webhooks.on('action.completed', async (event, { transaction }) => {
      expect(transaction).type.toBe<PoolClient>()
      await transaction.query('INSERT INTO credits (user_id, tokens, event_id) VALUES ($1, $2, $3)', [event.data.actionId, event.data.tokensDistributed, event.id])
    }, { name: 'credit-tokens' })
    expect<InboxContext<PostgresInbox>>().type.toBe<PostgresHandlerExtra>()
  })

  test('the transaction goes through a query builder that takes a pg client', () => {
    webhooks.on('action.completed', async function creditWithKysely (event, { transaction }) {
      await kyselyOn(transaction)
        .insertInto('credits')
        .values({ user_id: event.data.actionId, tokens: event.data.tokensDistributed, event_id: event.id })
        .execute()
    })
  })

  test('its durable record is typed on webhooks.inbox', () => {
    expect(webhooks.inbox.deadLetters()).type.toBeAssignableTo<Promise<unknown[]>>()
  })
})

describe('other inboxes', () => {
  test('give no `transaction`: asking for it does not compile', () => {
    expect<HandlerContext>().type.not.toHaveProperty('transaction')
    const memory = new Webhooks({ secret: 'whsec_example' })
    const sqlite = new Webhooks({ secret: 'whsec_example', inbox: sqliteInbox({ path: 'x.db' }) })
    expect(memory.on).type.not.toBeCallableWith('action.completed', (_event: unknown, context: { transaction: PoolClient }) => context)
    expect(sqlite.on).type.not.toBeCallableWith('action.completed', (_event: unknown, context: { transaction: PoolClient }) => context)
  })
})
