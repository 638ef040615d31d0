// No payload fragment reaches the logs through a Postgres error (issue 20 item
// 14): pg errors carry `detail` ("Failing row contains (…)"), `where` and `hint`,
// which quote the data. An event whose data holds a marker is driven through
// every failure path of the inbox we can provoke, with a real pino logger, and
// the marker must appear in no log line and no health reason.
import pg from 'pg'
import t, { type Test } from 'tap'
import { Webhooks } from '../src/index.js'
import { postgresInbox, type PostgresInbox, type PostgresInboxOptions } from '../src/postgres/inbox.js'
import { captureLogs, type CapturedLogs } from './helpers/logs.js'
import { freshSchema, postgresForTests } from './helpers/postgres.js'
import { SECRET, delivery, event, until } from './inbox-contract/support.js'

const MARKER = 'PAYLOAD-MARKER-7f3a'

const postgres = await postgresForTests(t)
if (postgres.url === undefined) {
  t.test(`Postgres redaction tests skipped: no PostgreSQL (${postgres.reason})`, async () => {})
} else {
  const url = postgres.url
  const admin = new pg.Pool({ connectionString: url, max: 4 })
  t.teardown(() => admin.end())

  const receiverOn = async (t: Test, schema: string, options: Partial<PostgresInboxOptions> = {}): Promise<{ webhooks: Webhooks<PostgresInbox>, logs: CapturedLogs }> => {
    const logs = captureLogs('debug')
    const webhooks = new Webhooks({ secret: SECRET, retry: { attempts: 3, minDelayMs: 50, maxDelayMs: 100 }, closeGraceMs: 1_000, logger: logs.logger, inbox: postgresInbox({ connectionString: url, schema, ...options }) })
    t.teardown(async () => {
      await webhooks.close()
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    })
    // Starts the inbox and its tables.
    t.equal((await webhooks.receive(delivery(event('evt_start')))).status, 200)
    return { webhooks, logs }
  }

  /** Data first: Postgres cuts a row quoted in `detail` to its first 64 characters or so. */
  const marked = (id: string): Record<string, unknown> => {
    const { type, createdAt } = event(id)
    return { data: { n: MARKER, note: `${MARKER} ${'x'.repeat(40)}` }, id, type, createdAt }
  }

  /** Every line the logger wrote, and the health reasons, are free of the marker; `expected` messages were logged, with the error's code. */
  const assertClean = (t: Test, logs: CapturedLogs, webhooks: Webhooks<PostgresInbox>, expected: RegExp): void => {
    const hits = logs.entries().filter((entry) => expected.test(String(entry.msg)))
    t.ok(hits.length > 0, `the failure was logged (${expected.source})`)
    t.ok(hits.every((entry) => typeof (entry.err as { code?: unknown } | undefined)?.code === 'string'), 'with the database\'s error code')
    t.notOk(logs.text().includes(MARKER), 'the marker is in no log line')
    t.notOk(JSON.stringify(webhooks.health()).includes(MARKER), 'nor in a health reason')
  }

  t.test('a row refused by a CHECK constraint ("Failing row contains …")', async (t) => {
    const schema = freshSchema()
    const { webhooks, logs } = await receiverOn(t, schema)
    await admin.query(`ALTER TABLE ${schema}.events ADD CONSTRAINT no_marker CHECK (body NOT LIKE '%${MARKER}%') NOT VALID`)
    t.equal((await webhooks.receive(delivery(marked('evt_checked')))).status, 503)
    assertClean(t, logs, webhooks, /could not record this event/)
  })

  t.test('a row refused with a data exception whose message quotes the value', async (t) => {
    const schema = freshSchema()
    const { webhooks, logs } = await receiverOn(t, schema)
    await admin.query(`
      CREATE FUNCTION ${schema}.as_number() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM (NEW.body::jsonb->'data'->>'n')::integer; RETURN NEW; END $$;
      CREATE TRIGGER as_number BEFORE INSERT ON ${schema}.events FOR EACH ROW EXECUTE FUNCTION ${schema}.as_number()`)
    t.equal((await webhooks.receive(delivery(marked('evt_number')))).status, 503)
    assertClean(t, logs, webhooks, /could not record this event/)
  })

  t.test('a batch that fails as a whole (a trigger\'s error with the row in its detail and hint)', async (t) => {
    const schema = freshSchema()
    const { webhooks, logs } = await receiverOn(t, schema)
    await admin.query(`
      CREATE FUNCTION ${schema}.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'refused' USING ERRCODE = 'XX000', DETAIL = NEW.body, HINT = NEW.body; END $$;
      CREATE TRIGGER refuse BEFORE INSERT ON ${schema}.events FOR EACH ROW EXECUTE FUNCTION ${schema}.refuse()`)
    t.equal((await webhooks.receive(delivery(marked('evt_batch')))).status, 503)
    assertClean(t, logs, webhooks, /could not record the events/)
  })

  t.test('an outcome write refused by a constraint (the worker\'s path)', async (t) => {
    const schema = freshSchema()
    const { webhooks, logs } = await receiverOn(t, schema)
    await admin.query(`ALTER TABLE ${schema}.events ADD CONSTRAINT stays_pending CHECK (state = 'pending' OR body NOT LIKE '%${MARKER}%') NOT VALID`)
    webhooks.on('action.completed', function noop () {})
    t.equal((await webhooks.receive(delivery(marked('evt_outcome')))).status, 200)
    await until(() => logs.entries().some((entry) => /could not claim an event or record its outcome/.test(String(entry.msg))), 'the outcome write to fail')
    assertClean(t, logs, webhooks, /could not claim an event or record its outcome/)
  })

  t.test('a scheduled purge refused by a trigger', async (t) => {
    const schema = freshSchema()
    const { webhooks, logs } = await receiverOn(t, schema, { purgeIntervalMs: 1_000, retentionSeconds: 1 })
    webhooks.on('action.completed', function noop () {})
    t.equal((await webhooks.receive(delivery(marked('evt_purged')))).status, 200)
    await until(async () => (await webhooks.inbox.outcome('evt_purged'))?.state === 'done', 'the event to be done')
    await admin.query(`
      CREATE FUNCTION ${schema}.keep() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF OLD.body LIKE '%${MARKER}%' THEN RAISE EXCEPTION 'kept' USING DETAIL = OLD.body; END IF; RETURN OLD; END $$;
      CREATE TRIGGER keep BEFORE DELETE ON ${schema}.events FOR EACH ROW EXECUTE FUNCTION ${schema}.keep()`)
    await until(() => logs.entries().some((entry) => /could not purge/.test(String(entry.msg))), 'the purge to fail')
    assertClean(t, logs, webhooks, /could not purge/)
  })
}
