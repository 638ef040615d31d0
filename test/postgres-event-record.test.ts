// The event record on the Postgres inbox (outcome(), deadLetters(), events()): an
// ordered event's stale flag and skipStale's `skipped: 'stale'` (schema version 4),
// the handlers that finished an event not done, and events({ handler }).
import pg from 'pg'
import t from 'tap'
import { Webhooks, type WebhooksOptions } from '../src/index.js'
import { describeOutcome } from '../src/cli/inbox-format.js'
import { migrationSql, postgresInbox, type PostgresInbox } from '../src/postgres/inbox.js'
import { freshSchema, postgresForTests } from './helpers/postgres.js'
import { captureLogger, delivery, event, SECRET, until } from './inbox-contract/support.js'

const postgres = await postgresForTests(t)
if (postgres.url === undefined) {
  t.plan(0, `Postgres event record skipped: ${postgres.reason}`)
} else {
  const connectionString = postgres.url
  const admin = new pg.Pool({ connectionString, max: 2 })
  t.teardown(async () => { await admin.end() })
  const keyed = (id: string, key: string, second: number): Record<string, unknown> =>
    ({ id, type: 'action.completed', createdAt: new Date(Date.UTC(2026, 4, 10, 9, 0, second)).toISOString(), data: { actionId: key } })
  const receiverOn = (schema: string, options: Partial<WebhooksOptions<PostgresInbox>> = {}): Webhooks<PostgresInbox> => {
    const webhooks = new Webhooks<PostgresInbox>({
      secret: SECRET,
      logger: captureLogger(),
      retry: { attempts: 2, minDelayMs: 5, maxDelayMs: 10 },
      inbox: postgresInbox({ connectionString, schema, pollIntervalMs: 100 }),
      ...options
    })
    t.teardown(() => webhooks.close())
    return webhooks
  }
  const byAction = { key: (e: { type: string, data: unknown }) => e.type.startsWith('action.') ? `action:${(e.data as { actionId: string }).actionId}` : undefined }
  const finished = async (webhooks: Webhooks<PostgresInbox>, id: string): Promise<void> => {
    await until(async () => ['done', 'dead'].includes((await webhooks.inbox.outcome(id))?.state ?? ''), `${id} to finish`)
  }

  t.test('postgres: skipStale finishes a stale event as done with skipped "stale" and stale true, in outcome(), events() and inbox show', async (t) => {
    const schema = freshSchema('rec_skip')
    t.teardown(() => admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
    const webhooks = receiverOn(schema, { ordering: { ...byAction, skipStale: true } })
    const ran: string[] = []
    webhooks.on('action.completed', async function ledger (e) { ran.push(e.id) }, { name: 'ledger' })
    t.equal((await webhooks.receive(delivery(keyed('evt_skip_newer', 'a1', 9)))).status, 200)
    await finished(webhooks, 'evt_skip_newer')
    t.equal((await webhooks.receive(delivery(keyed('evt_skip_older', 'a1', 3)))).status, 200)
    await finished(webhooks, 'evt_skip_older')
    t.same(ran, ['evt_skip_newer'], 'the older event did not run')
    const older = await webhooks.inbox.outcome('evt_skip_older')
    t.match(older, { state: 'done', skipped: 'stale', stale: true, orderingKey: 'action:a1', handled: [] })
    t.match(describeOutcome(older as NonNullable<typeof older>), /^outcome +stale: not run/m, 'inbox show says so')
    const newer = await webhooks.inbox.outcome('evt_skip_newer')
    t.match(newer, { state: 'done', stale: false, handled: ['ledger'] })
    t.equal(newer?.skipped, undefined, 'a handled event was not skipped')
    const listed = await webhooks.inbox.events({ state: 'done' })
    t.same(listed.map(({ id, stale, skipped }) => ({ id, stale, skipped })), [
      { id: 'evt_skip_older', stale: true, skipped: 'stale' },
      { id: 'evt_skip_newer', stale: false, skipped: undefined }
    ], 'events() rows carry the same marks')
    t.equal(webhooks.stats().ordering?.skippedStale, 1, 'stats() counts it')
  })

  t.test('postgres: a stale event that ran says stale in its record; an unordered event has no stale at all', async (t) => {
    const schema = freshSchema('rec_stale')
    t.teardown(() => admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
    const webhooks = receiverOn(schema, { ordering: byAction })
    const told: Array<[string, boolean | undefined]> = []
    webhooks.on(['action.completed', 'transaction.completed'], async function ledger (e, { ordering }) { told.push([e.id, ordering?.stale]) }, { name: 'ledger' })
    t.equal((await webhooks.receive(delivery(keyed('evt_stale_newer', 'a2', 9)))).status, 200)
    await finished(webhooks, 'evt_stale_newer')
    t.equal((await webhooks.receive(delivery(keyed('evt_stale_older', 'a2', 3)))).status, 200)
    t.equal((await webhooks.receive(delivery(event('evt_unordered', 'transaction.completed')))).status, 200)
    await finished(webhooks, 'evt_stale_older')
    await finished(webhooks, 'evt_unordered')
    t.same(told.sort(), [['evt_stale_newer', false], ['evt_stale_older', true], ['evt_unordered', undefined]])
    t.match(await webhooks.inbox.outcome('evt_stale_older'), { state: 'done', stale: true })
    t.equal((await webhooks.inbox.outcome('evt_stale_older'))?.skipped, undefined, 'it ran: not skipped')
    t.equal((await webhooks.inbox.outcome('evt_stale_newer'))?.stale, false)
    const unordered = await webhooks.inbox.outcome('evt_unordered')
    t.equal(unordered?.state, 'done')
    t.notOk(unordered !== undefined && 'stale' in unordered, 'no stale for an event without a key')
  })

  t.test('postgres: a pending or dead event lists the handlers that finished it; events({ handler }) finds what a handler failed on', async (t) => {
    const schema = freshSchema('rec_handled')
    t.teardown(() => admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
    // Two attempts, a minute apart: after the first, the retried event waits, pending.
    const webhooks = receiverOn(schema, { retry: { attempts: 2, minDelayMs: 60_000, maxDelayMs: 60_000 } })
    webhooks.on('action.completed', async function audit () {}, { name: 'audit' })
    webhooks.on('action.completed', async function credit (e) { if (e.id !== 'evt_fine') throw new Error('partner said no') }, { name: 'credit' })
    webhooks.on('transaction.completed', async function ledger () { throw new Error('ledger down') }, { name: 'ledger' })
    for (const [id, type] of [['evt_retried', 'action.completed'], ['evt_fine', 'action.completed'], ['evt_other', 'transaction.completed']] as const) {
      t.equal((await webhooks.receive(delivery(event(id, type)))).status, 200)
    }
    await until(async () => (await webhooks.inbox.outcome('evt_retried'))?.attempts === 1 && (await webhooks.inbox.outcome('evt_other'))?.attempts === 1 &&
      (await webhooks.inbox.outcome('evt_fine'))?.state === 'done', 'the first attempts')
    await until(async () => (await webhooks.inbox.outcome('evt_retried'))?.lastError !== undefined, 'the failure to be recorded')
    t.match(await webhooks.inbox.outcome('evt_retried'), { state: 'pending', handled: ['audit'] }, 'pending: audit finished, credit did not')
    t.match(await webhooks.inbox.outcome('evt_other'), { state: 'pending', handled: [] }, 'pending: nothing finished')
    t.same((await webhooks.inbox.events({ handler: 'credit' })).map(({ id }) => id), ['evt_retried'], 'the events credit failed on')
    t.same((await webhooks.inbox.events({ handler: 'ledger' })).map(({ id }) => id), ['evt_other'])
    t.same(await webhooks.inbox.events({ handler: 'audit' }), [], 'audit failed on nothing')
    t.same((await webhooks.inbox.events({ handler: 'credit', state: 'done' })), [], 'with the other filters')
    await t.rejects(webhooks.inbox.events({ handler: 42 as never }), { message: /"handler" must be/ })
    // The retry fails too: dead, audit still finished (it is not run again).
    await admin.query(`UPDATE ${schema}.events SET next_attempt_at = 0 WHERE id = 'evt_retried'`)
    await until(async () => (await webhooks.inbox.outcome('evt_retried'))?.state === 'dead', 'the retry to fail', 20_000)
    t.match(await webhooks.inbox.outcome('evt_retried'), { state: 'dead', attempts: 2, handled: ['audit'] })
    const [dead] = await webhooks.inbox.deadLetters()
    t.match(dead, { id: 'evt_retried', handled: ['audit'] }, 'deadLetters() too')
    t.same((await webhooks.inbox.events({ handler: 'credit', state: 'dead' })).map(({ id, handled }) => ({ id, handled })), [{ id: 'evt_retried', handled: ['audit'] }])
  })

  t.test('postgres: tables at version 3 are brought to the current version (the event record, flow waits); an event stored before has no stale, new ones do', async (t) => {
    const schema = freshSchema('rec_v3')
    t.teardown(() => admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
    await admin.query(migrationSql(schema))
    await admin.query(`DROP FUNCTION ${schema}.sir_claim_ordered, ${schema}.sir_keys_moved_on; DELETE FROM ${schema}.migrations WHERE version = 6; ALTER TABLE ${schema}.events DROP COLUMN wait_reason, DROP COLUMN wait_handler; DELETE FROM ${schema}.migrations WHERE version = 5; ALTER TABLE ${schema}.events DROP COLUMN stale, DROP COLUMN skipped; DELETE FROM ${schema}.migrations WHERE version = 4`)
    await admin.query(`INSERT INTO ${schema}.events (id, type, body, state, received_at, next_attempt_at, finished_at, ordering_key, created_at_ms, order_seq)
      VALUES ('evt_v3', 'action.completed', $1, 'done', 1, 1, 2, 'action:a3', 1, 1)`, [JSON.stringify(keyed('evt_v3', 'a3', 1))])
    const webhooks = receiverOn(schema, { ordering: byAction })
    webhooks.on('action.completed', async function ledger () {}, { name: 'ledger' })
    t.equal((await webhooks.receive(delivery(keyed('evt_v4', 'a3', 5)))).status, 200)
    await finished(webhooks, 'evt_v4')
    const { rows } = await admin.query(`SELECT version FROM ${schema}.migrations ORDER BY version`)
    t.same(rows, [{ version: 1 }, { version: 2 }, { version: 3 }, { version: 4 }, { version: 5 }, { version: 6 }])
    const before = await webhooks.inbox.outcome('evt_v3')
    t.match(before, { state: 'done', orderingKey: 'action:a3' }, 'the event stored before is kept')
    t.notOk(before !== undefined && 'stale' in before, 'with no stale: it was not recorded then')
    t.match(await webhooks.inbox.outcome('evt_v4'), { state: 'done', stale: false })
  })
}
