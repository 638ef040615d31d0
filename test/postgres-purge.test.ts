// The purge, which deletes an event's handler and attempt records with it (the
// tables have no foreign keys), at the SQL level: no orphans, no handled rows
// lost for an event a concurrent redrive revived, and the same statement on a
// schema created while the tables still had ON DELETE CASCADE keys.
import pg from 'pg'
import t, { type Test } from 'tap'
import { queriesFor, type Queries } from '../src/postgres/queries.js'
import { migrate, quoted } from '../src/postgres/schema.js'
import { freshSchema, postgresForTests } from './helpers/postgres.js'

const postgres = await postgresForTests(t)
if (postgres.url === undefined) {
  t.test(`Postgres purge tests skipped: no PostgreSQL (${postgres.reason})`, async () => {})
} else {
  const url = postgres.url
  const admin = new pg.Pool({ connectionString: url, max: 6 })
  t.teardown(() => admin.end())

  const seed = async (schema: string): Promise<void> => {
    const s = quoted(schema)
    await admin.query(`INSERT INTO ${s}.events (id, type, body, state, received_at, next_attempt_at, finished_at) VALUES
      ('done1', 't', '{}', 'done', 1, 1, 10), ('dead1', 't', '{}', 'dead', 1, 1, 10), ('live', 't', '{}', 'pending', 1, 1, NULL)`)
    await admin.query(`INSERT INTO ${s}.handled VALUES ('done1', 'h', 10), ('dead1', 'h1', 10), ('live', 'h', 10)`)
    await admin.query(`INSERT INTO ${s}.attempts VALUES ('done1', 1), ('dead1', 5), ('live', 1)`)
  }
  /** A fresh schema at this version, seeded, dropped when the test ends. */
  const seededSchema = async (t: Test): Promise<{ schema: string, sql: Queries }> => {
    const schema = freshSchema()
    t.teardown(() => admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
    const client = await admin.connect()
    await migrate(client, schema)
    client.release()
    await seed(schema)
    return { schema, sql: queriesFor(schema, false, 0) }
  }
  const ids = async (schema: string, table: string): Promise<string[]> =>
    (await admin.query<{ id: string }>(`SELECT ${table === 'events' ? 'id' : 'event_id'} AS id FROM ${quoted(schema)}.${table} ORDER BY 1`)).rows.map(({ id }) => id)

  t.test('purge leaves no orphans', async (t) => {
    const { schema, sql } = await seededSchema(t)
    t.same((await admin.query(sql.purge, ['done', 100])).rows, [{ purged: 1 }])
    t.same((await admin.query(sql.purge, ['dead', 100])).rows, [{ purged: 1 }])
    t.same(await ids(schema, 'events'), ['live'])
    t.same(await ids(schema, 'handled'), ['live'])
    t.same(await ids(schema, 'attempts'), ['live'])
  })

  t.test('purge racing a redrive that locked the row first keeps the revived event\'s records', async (t) => {
    const { schema, sql } = await seededSchema(t)
    const redriver = await admin.connect()
    await redriver.query('BEGIN')
    await redriver.query(sql.redrive, ['dead1', 50, `${schema}_events`])
    const purging = admin.query(sql.purge, ['dead', 100])
    await new Promise((resolve) => setTimeout(resolve, 200))
    await redriver.query('COMMIT')
    redriver.release()
    t.same((await purging).rows, [{ purged: 0 }])
    t.same(await ids(schema, 'handled'), ['dead1', 'done1', 'live'], 'h1 stays recorded: it is not run again')
    t.same(await ids(schema, 'attempts'), ['dead1', 'done1', 'live'])
  })

  t.test('purge racing a redrive that comes second', async (t) => {
    const { schema, sql } = await seededSchema(t)
    const purger = await admin.connect()
    await purger.query('BEGIN')
    await purger.query(sql.purge, ['dead', 100])
    const redriving = admin.query(sql.redrive, ['dead1', 50, `${schema}_events`])
    await new Promise((resolve) => setTimeout(resolve, 200))
    await purger.query('COMMIT')
    purger.release()
    t.equal((await redriving).rowCount, 0, 'nothing to redrive')
    t.same(await ids(schema, 'handled'), ['done1', 'live'])
    t.same(await ids(schema, 'attempts'), ['done1', 'live'])
  })

  t.test('the purge on a schema made before the keys were dropped', async (t) => {
    const schema = freshSchema()
    t.teardown(() => admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
    const client = await admin.connect()
    await migrate(client, schema)
    client.release()
    const s = quoted(schema)
    await admin.query(`ALTER TABLE ${s}.handled ADD FOREIGN KEY (event_id) REFERENCES ${s}.events (id) ON DELETE CASCADE;
      ALTER TABLE ${s}.attempts ADD FOREIGN KEY (event_id) REFERENCES ${s}.events (id) ON DELETE CASCADE`)
    await seed(schema)
    const sql = queriesFor(schema, false, 0)
    t.same((await admin.query(sql.purge, ['done', 100])).rows, [{ purged: 1 }])
    t.same(await ids(schema, 'handled'), ['dead1', 'live'])
  })
}
