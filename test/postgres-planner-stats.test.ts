// The Postgres inbox asks for fresh statistics of its events table after a
// burst (src/postgres/planner-stats.ts): until autovacuum's next look (up to a
// minute), the planner believed a handful of events were pending and read every
// pending event, checking each one's ordering key, for each scan of due events.
import pg from 'pg'
import t from 'tap'
import { postgresInbox } from '../src/postgres/inbox.js'
import { freshSchema, postgresForTests } from './helpers/postgres.js'
import { postgresTestTables } from './helpers/postgres-tables.js'
import { delivery, event, sleep, until } from './inbox-contract/support.js'

const postgres = await postgresForTests(t)
if (postgres.url === undefined) {
  t.test(`Postgres planner statistics tests skipped: no PostgreSQL (${postgres.reason})`, async () => {})
} else {
  const url = postgres.url
  const admin = new pg.Pool({ connectionString: url, max: 2 })
  t.teardown(() => admin.end())
  const { receiverWith } = postgresTestTables(admin)

  /** ANALYZE run by hand (autovacuum's own are counted apart), as Postgres's statistics views count them. */
  const manualAnalyzes = async (schema: string): Promise<number> => {
    const { rows } = await admin.query<{ count: string }>('SELECT analyze_count AS count FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = $2', [schema, 'events'])
    return Number(rows[0]?.count ?? 0)
  }

  // The waits for an ANALYZE allow 30 s: a backend that has just reported its
  // statistics may hold the next report back for up to 10 s while idle.

  /**
   * Autovacuum left out of the events table once the receiver has made it: its
   * own ANALYZE, due within its minute's round, would leave the planner
   * knowing the backlog (so none is asked for here) or hold the table as ours
   * comes (SKIP_LOCKED skips it): under CI load that once timed the test out.
   */
  const withoutAutovacuum = async (schema: string): Promise<void> => {
    await until(async () => (await admin.query<{ events: string | null }>('SELECT to_regclass($1)::text AS events', [`${schema}.events`])).rows[0]?.events != null, 'the inbox to make its tables')
    await admin.query(`ALTER TABLE ${schema}.events SET (autovacuum_enabled = false)`)
  }

  const accept = async (webhooks: ReturnType<typeof receiverWith>, from: number, count: number): Promise<void> => {
    for (let index = from; index < from + count; index += 50) {
      const answers = await Promise.all(Array.from({ length: Math.min(50, from + count - index) }, async (_, offset) => await webhooks.receive(delivery(event(`evt_burst_${index + offset}`)))))
      for (const answer of answers) if (answer.status !== 202 && answer.status !== 200) throw new Error(`delivery answered ${answer.status}`)
    }
  }

  t.test('a backlog of 1 000 events or more gets its table analyzed once; a small one does not', async (t) => {
    const schema = freshSchema()
    t.teardown(() => admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
    // No handler: the events stay pending, a backlog as a burst leaves it.
    const webhooks = receiverWith(t, postgresInbox({ connectionString: url, schema, pollIntervalMs: 100 }))
    await withoutAutovacuum(schema)
    await accept(webhooks, 0, 600)
    // Statistics views are flushed about once a second: a count of 0 after 1.5 s is a count of 0.
    await sleep(1_500)
    t.equal(await manualAnalyzes(schema), 0, 'no ANALYZE for 600 pending events')
    await accept(webhooks, 600, 600)
    await until(async () => await manualAnalyzes(schema) >= 1, 'the events table to be analyzed', 30_000)
    await sleep(1_500)
    t.equal(await manualAnalyzes(schema), 1, 'once: the backlog has not grown fourfold since')
    const { rows } = await admin.query<{ reltuples: number }>('SELECT reltuples FROM pg_class WHERE oid = $1::regclass', [`${schema}.events`])
    t.ok((rows[0]?.reltuples ?? 0) >= 900, `the planner now counts about the rows pending then (${rows[0]?.reltuples})`)
  })

  t.test('a receiver that starts onto a backlog the planner already knows of does not analyze it again', async (t) => {
    const schema = freshSchema()
    t.teardown(() => admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
    const first = receiverWith(t, postgresInbox({ connectionString: url, schema, pollIntervalMs: 100 }))
    await withoutAutovacuum(schema)
    await accept(first, 0, 1_200)
    await until(async () => await manualAnalyzes(schema) >= 1, 'the first receiver to analyze its backlog', 30_000)
    await first.close()
    // A new process on the same backlog: its first count sees 1 200 pending, as a burst would look.
    const second = receiverWith(t, postgresInbox({ connectionString: url, schema, pollIntervalMs: 100 }))
    t.ok([200, 202].includes((await second.receive(delivery(event('evt_after_restart')))).status), 'accepted')
    await sleep(2_500)
    t.equal(await manualAnalyzes(schema), 1, 'no second ANALYZE: the statistics already count the backlog')
  })
}
