import t from 'tap'
import { postgresInbox } from '../../src/postgres/inbox.js'
import { freshSchema, postgresForTests } from '../helpers/postgres.js'
import { runInboxContract } from './scenarios.js'

const postgres = await postgresForTests(t)
if (postgres.url === undefined) {
  t.plan(0, `Postgres inbox contract skipped: no PostgreSQL (${postgres.reason})`)
} else {
  const { url } = postgres
  runInboxContract(t, {
    name: 'postgres',
    durable: true,
    place: async () => {
      const schema = freshSchema()
      return {
        inbox: () => postgresInbox({ connectionString: url, schema, pollIntervalMs: 100 }),
        fixtureEnv: { SIR_STORE: 'postgres', SIR_POSTGRES_URL: url, SIR_SCHEMA: schema }
      }
    }
  })
}
