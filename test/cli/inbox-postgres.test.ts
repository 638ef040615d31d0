import t from 'tap'
import { randomUUID } from 'node:crypto'
import { postgresInbox } from '../../src/postgres/inbox.js'
import { postgresForTests } from '../helpers/postgres.js'
import { ensureBuilt, runCli } from './helpers.js'
import { operatorFlow } from './inbox-flow.js'

ensureBuilt()

t.test('Postgres: lists, shows, re-drives and purges a dead letter', async (t) => {
  const postgres = await postgresForTests(t)
  if (postgres.url === undefined) {
    t.comment(`skipped, needs PostgreSQL: ${postgres.reason}`)
    return
  }
  const schema = `cli_${randomUUID().replaceAll('-', '')}`
  await operatorFlow(t, ['--store', postgres.url, '--schema', schema], postgresInbox({ connectionString: postgres.url, schema, pollIntervalMs: 50 }))

  const elsewhere = await runCli(['inbox', 'stats', '--store', postgres.url, '--schema', 'nope'])
  t.equal(elsewhere.code, 1, elsewhere.stderr)
  t.match(elsewhere.stderr, /^sir-webhooks inbox: no sir-webhooks inbox tables in the schema "nope" \(--schema\) of this database: give the schema the inbox was created with \(its `schema` option\) as --schema NAME/)
})
