import pg from 'pg'
import t from 'tap'
import { freshSchema, postgresForTests } from '../helpers/postgres.js'
import { ensureBuilt, runCli } from './helpers.js'

ensureBuilt()

t.test('migrate --print prints the SQL for a schema, in one transaction', async (t) => {
  const result = await runCli(['migrate', '--print', '--schema', 'billing_inbox'])
  t.equal(result.code, 0)
  t.match(result.stdout, /^BEGIN;$/m)
  t.match(result.stdout, /CREATE TABLE "billing_inbox"\.events/)
  t.match(result.stdout, /INSERT INTO "billing_inbox"\.migrations \(version\) VALUES \(1\);/)
  t.match(result.stdout, /^COMMIT;$/m)
  t.equal(result.stderr, '')
})

t.test('migrate --print --from the current version prints no table to create', async (t) => {
  const result = await runCli(['migrate', '--print', '--from', '3'])
  t.equal(result.code, 0)
  t.notMatch(result.stdout, /CREATE TABLE "/, 'only the migrations table, IF NOT EXISTS')
})

t.test('migrate --print --from 1 prints versions 2 and 3, not 1: the flow-control tables and columns first', async (t) => {
  const result = await runCli(['migrate', '--print', '--from', '1'])
  t.equal(result.code, 0)
  t.notMatch(result.stdout, /CREATE TABLE "sir_webhooks"\.events/)
  t.match(result.stdout, /CREATE TABLE "sir_webhooks"\.flow_buckets/)
  t.match(result.stdout, /ALTER TABLE "sir_webhooks"\.events ADD COLUMN flow jsonb/)
  t.match(result.stdout, /VALUES \(2\);/)
})

t.test('migrate --print --from 2 prints only version 3: the ordering table and columns', async (t) => {
  const result = await runCli(['migrate', '--print', '--from', '2'])
  t.equal(result.code, 0)
  t.notMatch(result.stdout, /flow_buckets/)
  t.match(result.stdout, /CREATE TABLE "sir_webhooks"\.ordering_keys/)
  t.match(result.stdout, /ADD COLUMN ordering_key text/)
  t.match(result.stdout, /VALUES \(3\);/)
})

t.test('migrate --print --from 3 prints only version 4: the event record\'s stale and skipped columns', async (t) => {
  const result = await runCli(['migrate', '--print', '--from', '3'])
  t.equal(result.code, 0)
  t.notMatch(result.stdout, /CREATE TABLE "sir_webhooks"\.ordering_keys/)
  t.match(result.stdout, /ALTER TABLE "sir_webhooks"\.events ADD COLUMN stale boolean, ADD COLUMN skipped text/)
  t.match(result.stdout, /VALUES \(4\);/)
})

t.test('migrate --print --from 4 prints only version 5: flow control\'s waits, found by a resume or a slot\'s release', async (t) => {
  const result = await runCli(['migrate', '--print', '--from', '4'])
  t.equal(result.code, 0)
  t.notMatch(result.stdout, /ADD COLUMN stale/)
  t.match(result.stdout, /ALTER TABLE "sir_webhooks"\.events ADD COLUMN wait_reason text, ADD COLUMN wait_handler text/)
  t.match(result.stdout, /CREATE INDEX events_waiting/)
  t.match(result.stdout, /VALUES \(5\);/)
})

t.test('migrate --print --from 5 prints only version 6: ordering\'s claim and key release as functions', async (t) => {
  const result = await runCli(['migrate', '--print', '--from', '5'])
  t.equal(result.code, 0)
  t.notMatch(result.stdout, /ADD COLUMN wait_reason/)
  t.match(result.stdout, /CREATE FUNCTION "sir_webhooks"\.sir_claim_ordered \(ids text\[\], now_ms bigint\)/)
  t.match(result.stdout, /CREATE FUNCTION "sir_webhooks"\.sir_keys_moved_on/)
  t.match(result.stdout, /VALUES \(6\);/)
})

t.test('migrate refuses what it cannot do, naming the flag', async (t) => {
  const bare = await runCli(['migrate'])
  t.equal(bare.code, 2)
  t.match(bare.stderr, /--print is required/)
  const badSchema = await runCli(['migrate', '--print', '--schema', 'Robert"); DROP TABLE students;--'])
  t.equal(badSchema.code, 2)
  t.match(badSchema.stderr, /--schema must be a lower-case SQL name/)
  const tooNew = await runCli(['migrate', '--print', '--from', '99'])
  t.equal(tooNew.code, 2)
  t.match(tooNew.stderr, /--from must be at most 6/)
})

const postgres = await postgresForTests(t)
t.test('the printed SQL applies to a real database', { skip: postgres.url === undefined ? `no PostgreSQL (${postgres.reason})` : false }, async (t) => {
  const schema = freshSchema()
  const result = await runCli(['migrate', '--print', '--schema', schema])
  const client = new pg.Client({ connectionString: postgres.url })
  await client.connect()
  t.teardown(async () => {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await client.end()
  })
  await client.query(result.stdout)
  const { rows } = await client.query(`SELECT version FROM ${schema}.migrations ORDER BY version`)
  t.same(rows, [{ version: 1 }, { version: 2 }, { version: 3 }, { version: 4 }, { version: 5 }, { version: 6 }])
})
