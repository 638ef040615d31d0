// Ordering on the Postgres inbox: the property harness and the fixed scenarios
// every inbox with an ordering store passes, on a fresh schema each.
import pg from 'pg'
import t from 'tap'
import { Webhooks, type Inbox, type WebhooksOptions } from '../src/index.js'
import { migrationSql, postgresInbox, type PostgresInbox } from '../src/postgres/inbox.js'
import { freshSchema, postgresForTests } from './helpers/postgres.js'
import { captureLogger, delivery, SECRET, until } from './inbox-contract/support.js'
import { runOrderingProperty } from './ordering/property.js'
import { runOrderingScenarios } from './ordering/scenarios.js'

/**
 * The inbox with an `idle()` for the shared harness: resolves once the schema
 * holds no pending event. The Postgres inbox has none of its own (its work is the
 * schema's, shared with other receivers); the harness waits on `webhooks.idle()`.
 */
function withIdle (inbox: PostgresInbox): Inbox {
  const idle = async (): Promise<void> => {
    for (;;) {
      if ((await inbox.counts()).pending === 0) return
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  return new Proxy(inbox, {
    get (target, property) {
      if (property === 'idle') return idle
      const value: unknown = Reflect.get(target, property, target)
      return typeof value === 'function' ? value.bind(target) : value
    }
  }) as Inbox
}

const postgres = await postgresForTests(t)
if (postgres.url === undefined) {
  t.plan(0, `Postgres ordering skipped: ${postgres.reason}`)
} else {
  const connectionString = postgres.url
  const inbox = (): Inbox => withIdle(postgresInbox({ connectionString, schema: freshSchema('ord'), pollIntervalMs: 100 }))
  // A batch's claim takes its events' keys at its BEGIN; the later events of the batch start after the earlier ones ran.
  const claimedAt = async (context: unknown): Promise<number> => {
    const { transaction } = context as { transaction: pg.PoolClient }
    const { rows } = await transaction.query<{ ms: number }>('SELECT extract(epoch FROM transaction_timestamp())::float8 * 1000 AS ms')
    return rows[0]!.ms
  }
  runOrderingProperty(t, { name: 'postgres', inbox, claimedAt }, 8)
  runOrderingScenarios(t, { name: 'postgres', inbox, durable: true })

  const admin = new pg.Pool({ connectionString, max: 2 })
  t.teardown(async () => { await admin.end() })
  const keyed = (id: string, key: string, second: number): Record<string, unknown> =>
    ({ id, type: 'action.completed', createdAt: new Date(Date.UTC(2026, 4, 10, 9, 0, second)).toISOString(), data: { actionId: key } })
  const ordered = (schema: string, options: Partial<WebhooksOptions<PostgresInbox>> = {}): Webhooks<PostgresInbox> => new Webhooks<PostgresInbox>({
    secret: SECRET,
    logger: captureLogger(),
    retry: { attempts: 2, minDelayMs: 5, maxDelayMs: 10 },
    inbox: postgresInbox({ connectionString, schema, pollIntervalMs: 100 }),
    ordering: { key: (event) => `action:${(event.data as { actionId: string }).actionId}`, onDeadLetter: 'block' },
    ...options
  })

  t.test('postgres: redriving the dead letter that blocks a key moves the key on; it runs in its place, before the newer events of its key', async (t) => {
    const schema = freshSchema('ord_redrive')
    t.teardown(() => admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
    const webhooks = ordered(schema)
    t.teardown(() => webhooks.close())
    let broken = true
    const ran: string[] = []
    webhooks.on('action.completed', async function ledger (event) {
      if (event.id === 'evt_redrive_old' && broken) throw new Error('downstream said no')
      ran.push(event.id)
    }, { name: 'ledger' })
    t.equal((await webhooks.receive(delivery(keyed('evt_redrive_old', 'a1', 1)))).status, 200)
    await until(async () => (await webhooks.ordering.blocked()).length === 1, 'the key to be blocked')
    t.equal((await webhooks.receive(delivery(keyed('evt_redrive_new', 'a1', 2)))).status, 200)
    await new Promise((resolve) => setTimeout(resolve, 300))
    t.same(ran, [], 'the newer event waits behind the dead letter')
    broken = false
    t.ok(await webhooks.inbox.redrive('evt_redrive_old'), 'redriven')
    await until(() => ran.length === 2, 'both events to run')
    t.same(ran, ['evt_redrive_old', 'evt_redrive_new'], 'the redriven event first, by createdAt')
    t.same(await webhooks.ordering.blocked(), [], 'the key is no longer blocked')
  })

  t.test('postgres: an ordered event deferred by flow control keeps its key: the key\'s newer events wait, and the order holds', async (t) => {
    const schema = freshSchema('ord_flow')
    t.teardown(() => admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
    const webhooks = ordered(schema)
    t.teardown(() => webhooks.close())
    const ran: Array<[number, number]> = []
    // Five a second, one at a time: most runs are deferred (no attempt used) before they start.
    webhooks.on('action.completed', async function ledger (event, { attempt }) {
      ran.push([new Date(event.createdAt).getUTCSeconds(), attempt])
    }, { name: 'ledger', rate: { perSecond: 5, burst: 1 } })
    const seconds = [7, 3, 9, 1, 5, 8]
    // Accepted together (one batch): the oldest runs first, and each deferred head keeps the key.
    const answers = await Promise.all(seconds.map(async (second) => await webhooks.receive(delivery(keyed(`evt_flow_${second}`, 'a3', second)))))
    t.ok(answers.every((answer) => answer.status === 200))
    await until(() => ran.length === seconds.length, 'every event to run', 10_000)
    t.same(ran, [...seconds].sort((a, b) => a - b).map((second) => [second, 1]), 'oldest createdAt first, each on its first attempt')
  })

  t.test('postgres: an event retried keeps its key against an older event delivered during its backoff: that one runs after it, stale', async (t) => {
    const schema = freshSchema('ord_hold')
    t.teardown(() => admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
    const webhooks = ordered(schema, { retry: { attempts: 3, minDelayMs: 400, maxDelayMs: 400 } })
    t.teardown(() => webhooks.close())
    const ran: Array<[string, number, boolean | undefined]> = []
    webhooks.on('action.completed', async function ledger (event, { attempt, ordering }) {
      ran.push([event.id, attempt, ordering?.stale])
      if (event.id === 'evt_hold_newer' && attempt === 1) throw new Error('downstream said no')
    }, { name: 'ledger' })
    t.equal((await webhooks.receive(delivery(keyed('evt_hold_newer', 'a4', 9)))).status, 200)
    await until(() => ran.length === 1, 'the first attempt')
    // In its backoff: the older event is the head of the key now, but the key is the retried event's.
    t.equal((await webhooks.receive(delivery(keyed('evt_hold_older', 'a4', 1)))).status, 200)
    await until(() => ran.length === 3, 'the retry and the older event')
    t.same(ran, [['evt_hold_newer', 1, false], ['evt_hold_newer', 2, false], ['evt_hold_older', 1, true]], 'the retried event first, then the older one, stale')
  })

  t.test('postgres: tables at version 2 are brought to the current version (ordering, the event record, flow waits); an event stored before runs, unordered, beside ordered ones', async (t) => {
    const schema = freshSchema('ord_v2')
    t.teardown(() => admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
    await admin.query(migrationSql(schema))
    await admin.query(`DROP FUNCTION ${schema}.sir_claim_ordered, ${schema}.sir_keys_moved_on; DELETE FROM ${schema}.migrations WHERE version = 6; ALTER TABLE ${schema}.events DROP COLUMN wait_reason, DROP COLUMN wait_handler; DELETE FROM ${schema}.migrations WHERE version = 5; ALTER TABLE ${schema}.events DROP COLUMN stale, DROP COLUMN skipped; DELETE FROM ${schema}.migrations WHERE version = 4`)
    await admin.query(`DROP TABLE ${schema}.ordering_keys; DROP SEQUENCE ${schema}.events_order_seq; ALTER TABLE ${schema}.events DROP COLUMN ordering_key, DROP COLUMN created_at_ms, DROP COLUMN order_seq; DELETE FROM ${schema}.migrations WHERE version = 3`)
    await admin.query(`INSERT INTO ${schema}.events (id, type, body, received_at, next_attempt_at) VALUES ('evt_v2', 'action.completed', $1, 1, 1)`, [JSON.stringify(keyed('evt_v2', 'a2', 5))])
    const webhooks = ordered(schema)
    t.teardown(() => webhooks.close())
    const ran: Array<[string, boolean]> = []
    webhooks.on('action.completed', async function ledger (event, { ordering }) { ran.push([event.id, ordering === undefined]) }, { name: 'ledger' })
    t.equal((await webhooks.receive(delivery(keyed('evt_v3', 'a2', 1)))).status, 200)
    await until(() => ran.length === 2, 'both events to run')
    t.same(ran.sort(), [['evt_v2', true], ['evt_v3', false]], 'the stored event runs unordered, the new one ordered')
    await until(async () => (await webhooks.inbox.outcome('evt_v3'))?.state === 'done', 'evt_v3 done')
    t.match(await webhooks.inbox.outcome('evt_v3'), { orderingKey: String }, 'outcome() names the ordered event\'s key')
    t.equal((await webhooks.inbox.outcome('evt_v2'))?.orderingKey, undefined, 'and none for the event stored before')
    const { rows } = await admin.query(`SELECT version FROM ${schema}.migrations ORDER BY version`)
    t.same(rows, [{ version: 1 }, { version: 2 }, { version: 3 }, { version: 4 }, { version: 5 }, { version: 6 }])
  })
}
