// Inbox.events(query): the dashboard's filtered listing, on SQLite and Postgres,
// against the same rows and the same expectations.
import { join } from 'node:path'
import Database from 'better-sqlite3'
import pg from 'pg'
import t, { type Test } from 'tap'
import type { EventOutcome } from '../src/core/outcome.js'
import type { EventQuery } from '../src/core/inbox.js'
import { postgresInbox } from '../src/postgres/inbox.js'
import { migrate, quoted } from '../src/postgres/schema.js'
import { sqliteInbox } from '../src/sqlite/inbox.js'
import { tempDir } from './inbox-contract/scenarios.js'
import { freshSchema, postgresForTests } from './helpers/postgres.js'

// id, type, state, received_at, finished_at, attempts, last_error
const ROWS: Array<[string, string, string, number, number | null, number, string | null]> = [
  ['e1', 'a', 'pending', 1000, null, 0, null],
  ['e2', 'b', 'done', 2000, 2500, 1, null],
  ['e3', 'a', 'dead', 3000, 3500, 5, 'Error: <b>no</b>'],
  ['e4', 'a', 'done', 4000, 4100, 1, null]
]

function expectations (t: Test, events: (query?: EventQuery) => Promise<EventOutcome[]>): Promise<void> {
  const ids = async (query?: EventQuery): Promise<string[]> => (await events(query)).map(({ id }) => id)
  return (async () => {
    t.same(await ids(), ['e4', 'e3', 'e2', 'e1'], 'newest received first')
    t.same(await ids({ type: 'a' }), ['e4', 'e3', 'e1'], 'by type')
    t.same(await ids({ state: 'done' }), ['e4', 'e2'], 'by state')
    t.same(await ids({ since: new Date(2000), until: new Date(4000) }), ['e3', 'e2'], 'since is inclusive, until exclusive')
    t.same(await ids({ limit: 2 }), ['e4', 'e3'], 'limited')
    t.same(await ids({ oldestFirst: true, limit: 2 }), ['e1', 'e2'], 'oldest first')
    t.same(await ids({ state: 'pending', limit: 1, oldestFirst: true }), ['e1'], 'the longest-waiting pending event')
    t.same(await ids({ type: "a' OR 1=1 --" }), [], 'a type is a value, never SQL')
    const [dead] = await events({ type: 'a', state: 'dead' })
    t.match(dead, { id: 'e3', type: 'a', state: 'dead', attempts: 5, lastError: 'Error: <b>no</b>', receivedAt: new Date(3000), finishedAt: new Date(3500), event: { id: 'e3' } })
    await t.rejects(events({ limit: 0 }), { message: /"limit" must be an integer from 1 to 500, got 0/ })
    await t.rejects(events({ state: 'stuck' as never }), { message: /"state" must be pending, done or dead/ })
    await t.rejects(events({ since: new Date('nope') }), { message: /"since" must be a valid Date/ })
  })()
}

t.test('SQLite: events(query) filters by type, state and time received', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const inbox = sqliteInbox({ path })
  t.teardown(() => inbox.close(0))
  const db = new Database(path)
  t.teardown(() => db.close())
  const insert = db.prepare('INSERT INTO sir_webhook_events (id, type, event, state, received_at, next_attempt_at, finished_at, attempts, last_error) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?)')
  for (const [id, type, state, receivedAt, finishedAt, attempts, lastError] of ROWS) insert.run(id, type, JSON.stringify({ id, type }), state, receivedAt, finishedAt, attempts, lastError)
  await expectations(t, (query) => inbox.events(query))
})

const postgres = await postgresForTests(t)
if (postgres.url === undefined) {
  t.test(`Postgres events(query) skipped: no PostgreSQL (${postgres.reason})`, async () => {})
} else {
  const url = postgres.url
  t.test('Postgres: events(query) filters by type, state and time received', async (t) => {
    const pool = new pg.Pool({ connectionString: url, max: 2 })
    t.teardown(() => pool.end())
    const schema = freshSchema()
    t.teardown(() => pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
    const client = await pool.connect()
    await migrate(client, schema)
    client.release()
    const s = quoted(schema)
    for (const [id, type, state, receivedAt, finishedAt, attempts, lastError] of ROWS) {
      await pool.query(`INSERT INTO ${s}.events (id, type, body, state, received_at, next_attempt_at, finished_at, last_error) VALUES ($1, $2, $3, $4, $5, 0, $6, $7)`,
        [id, type, JSON.stringify({ id, type, createdAt: new Date(receivedAt).toISOString(), data: {} }), state, receivedAt, finishedAt, lastError])
      if (attempts > 0) await pool.query(`INSERT INTO ${s}.attempts (event_id, started) VALUES ($1, $2)`, [id, attempts])
    }
    const inbox = postgresInbox({ pool, schema, migrate: false })
    t.teardown(() => inbox.close(0))
    await expectations(t, (query) => inbox.events(query))
  })
}
