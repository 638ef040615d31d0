import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Webhooks, WebhookOptionsError, type HandlerContext, type OrderingOptions } from '../src/index.js'
import { MemoryInbox } from '../src/core/memory-inbox.js'
import { MemoryOrderingStore } from '../src/core/ordering/memory-store.js'
import { sqliteInbox } from '../src/sqlite/inbox.js'
import { postgresInbox } from '../src/postgres/inbox.js'
import { BullmqInbox } from '../src/bullmq/inbox.js'
import { otelForTests } from './helpers/otel.js'
import { delivery, receiver, SECRET, until } from './inbox-contract/support.js'

const byAction: OrderingOptions = { key: (event) => `action:${(event.data as { actionId: string }).actionId}` }

function keyed (id: string, actionId: string, second: number): Record<string, unknown> {
  return { id, type: 'action.completed', createdAt: new Date(Date.UTC(2026, 4, 10, 9, 0, second)).toISOString(), data: { actionId, tokensDistributed: 50 } }
}

t.test('the ordering option is checked at construction, with messages naming the option', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    ['actionId', /^sir-webhooks: "ordering" must be an object such as \{ key: \(event\) => event.data.actionId \}, got "actionId"$/],
    [{}, /"ordering.key" must be a function of the event returning a string or undefined, got undefined/],
    [{ key: 'data.actionId' }, /"ordering.key" must be a function .*, got "data.actionId"/],
    [{ key: () => 'k', onDeadLetter: 'retry' }, /"ordering.onDeadLetter" must be "skip" or "block", got "retry"/],
    [{ key: () => 'k', skipStale: 'yes' }, /"ordering.skipStale" must be true or false, got "yes"/],
    [{ key: () => 'k', holdMs: -1 }, /"ordering.holdMs" must be an integer of milliseconds from 0 to 86 400 000 \(a day\), got -1/],
    [{ key: () => 'k', holdMs: 1.5 }, /"ordering.holdMs" must be an integer/],
    [{ key: () => 'k', holdMS: 100 }, /new Webhooks\(options.ordering\): unknown option "holdMS"; did you mean "holdMs"\?/]
  ]
  for (const [ordering, message] of cases) {
    t.throws(() => new Webhooks({ secret: SECRET, ordering: ordering as never }), { name: 'WebhookOptionsError', message }, JSON.stringify(ordering))
  }
  const webhooks = new Webhooks({ secret: SECRET, ordering: { key: () => 'k', onDeadLetter: 'block', skipStale: true, holdMs: 500 } })
  t.same(webhooks.options.ordering && { ...webhooks.options.ordering, key: typeof webhooks.options.ordering.key }, { key: 'function', onDeadLetter: 'block', skipStale: true, holdMs: 500 })
  t.equal(new Webhooks({ secret: SECRET, ordering: { key: () => 'k' } }).options.ordering?.onDeadLetter, 'skip', 'skip by default')
  await webhooks.close()
})

/** An inbox of a user's own, with no ordering store. */
class PlainInbox {
  start (): void {}
  accept (): 'accepted' { return 'accepted' }
  async close (): Promise<void> {}
}

t.test('an inbox without an ordering store refuses the option, naming the inbox, rather than ignoring it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sir-ordering-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const inboxes = [
    // A custom inbox without orderingStore(): every built-in inbox has one now.
    ['PlainInbox', new PlainInbox()]
  ] as const
  // SQLite has its ordering store (test/ordering-sqlite.test.ts): the option is taken.
  const sqlite = new Webhooks({ secret: SECRET, inbox: sqliteInbox({ path: join(dir, 'inbox.db') }), ordering: byAction })
  t.teardown(async () => { await sqlite.close() })
  t.same(sqlite.stats().ordering, { waitingKeys: 0, blockedKeys: 0, stale: 0, skippedStale: 0, skippedDeadLetters: 0, keyErrors: 0 }, 'the SQLite inbox takes the option')
  for (const [name, inbox] of inboxes) {
    t.throws(() => new Webhooks({ secret: SECRET, inbox, ordering: byAction }), {
      name: 'WebhookOptionsError',
      message: new RegExp(`^sir-webhooks: "ordering" needs an inbox that keeps the events of one key in order, and the inbox ${name} does not \\(it offers no orderingStore\\(\\)\\); the built-in inboxes do`)
    }, name)
  }
  // The Postgres inbox has its store: the option is taken (the store is unreachable here, which changes nothing at construction).
  const withPostgres = new Webhooks({ secret: SECRET, inbox: postgresInbox({ connectionString: 'postgres://127.0.0.1:1/never' }), ordering: byAction })
  t.equal(withPostgres.stats().ordering?.blockedKeys, 0, 'the Postgres inbox takes the option')
  await withPostgres.close()
  // Made, a BullMQ inbox connects at once; its class says enough (test/ordering-bullmq.test.ts runs it).
  t.ok('orderingStore' in BullmqInbox.prototype, 'the BullMQ inbox has an ordering store, so it is not refused')
  const plain = new Webhooks({ secret: SECRET })
  t.equal(plain.stats().ordering, undefined, 'stats() has no ordering section without the option')
  await t.rejects(plain.ordering.blocked(), { name: 'WebhookOptionsError', message: /ordering.blocked\(\): this receiver has no "ordering" option/ })
  await t.rejects(plain.ordering.unblock('k'), WebhookOptionsError)
  await plain.close()
})

t.test('ordering changes nothing before the 2xx; the key is computed once, after verification and dedupe', async (t) => {
  let calls = 0
  const webhooks = receiver(new MemoryInbox(), { ordering: { key: (event) => { calls += 1; return `action:${(event.data as { actionId: string }).actionId}` } } })
  t.teardown(() => webhooks.close())
  webhooks.on('action.completed', function ledger () {}, { name: 'ledger' })
  const body = keyed(`evt_once_${process.pid}`, 'a1', 1)
  t.equal((await webhooks.receive(delivery(body, 'whsec_wrong'))).status, 401, 'a bad signature is refused as ever')
  t.equal(calls, 0, 'the key function never saw an unverified event')
  t.equal((await webhooks.receive(delivery(body))).code, 'ACCEPTED')
  t.equal((await webhooks.receive(delivery(body))).code, 'DUPLICATE', 'a duplicate is answered as ever')
  await webhooks.idle()
  t.equal(calls, 1, 'once per accepted event; not for the duplicate')
})

t.test('a key function that throws or returns a non-string: the event is accepted and runs unordered, logged without its body', async (t) => {
  const webhooks = receiver(new MemoryInbox(), {
    ordering: {
      key: (event) => {
        const actionId = (event.data as { actionId: string }).actionId
        if (actionId === 'throws') throw new Error('no key for this one')
        return actionId === 'number' ? 42 as never : `action:${actionId}`
      }
    }
  })
  t.teardown(() => webhooks.close())
  const told: Array<HandlerContext['ordering']> = []
  webhooks.on('action.completed', function ledger (_event, { ordering }) { told.push(ordering) }, { name: 'ledger' })
  t.equal((await webhooks.receive(delivery(keyed(`evt_keythrows_${process.pid}`, 'throws', 1)))).status, 200)
  t.equal((await webhooks.receive(delivery(keyed(`evt_keynumber_${process.pid}`, 'number', 1)))).status, 200)
  await webhooks.idle()
  t.same(told, [undefined, undefined], 'both ran, told no ordering')
  t.equal(webhooks.stats().ordering?.keyErrors, 2)
  const warnings = webhooks.log.filter((entry) => entry.msg === 'ordering.key failed for this event: it runs unordered')
  t.same(warnings.map((entry) => (entry.fields.event as { id: string }).id), [`evt_keythrows_${process.pid}`, `evt_keynumber_${process.pid}`])
  t.match(String((warnings[1]?.fields.err as Error | undefined)?.message), /returned number, not a string or undefined/)
  t.notMatch(JSON.stringify(webhooks.log), /tokensDistributed/, 'no body in any log line')
})

t.test('the memory store keeps the newest handled createdAt of at most dedupe.maxEntries keys, for dedupe.ttlSeconds', async (t) => {
  let now = 1_000
  const store = new MemoryOrderingStore({ ttlMs: 60_000, maxKeys: 3 }, () => now)
  const ref = (key: string, createdAt: number, seq: number) => ({ id: `${key}_${seq}`, key, createdAt, seq, notBefore: 0 })
  for (const [index, key] of ['a', 'b', 'c', 'd'].entries()) {
    const event = ref(key, 100 + index, index)
    store.enqueue(event)
    t.match(store.take(event, now), { taken: true })
    store.release(event, event.createdAt)
  }
  t.equal(store.rememberedKeys, 3, 'the cap holds')
  t.equal(store.newestHandledAt('a'), undefined, 'the key updated longest ago is forgotten first')
  t.equal(store.newestHandledAt('d'), 103)
  now += 60_001
  t.equal(store.newestHandledAt('d'), undefined, 'and none outlives the dedupe window')
  const webhooks = receiver(new MemoryInbox(), { ordering: byAction, dedupe: { maxEntries: 3 } })
  t.teardown(() => webhooks.close())
  webhooks.on('action.completed', function ledger () {}, { name: 'ledger' })
  for (let index = 0; index < 5; index += 1) await webhooks.receive(delivery(keyed(`evt_lru_${process.pid}_${index}`, `a${index}`, 1)))
  await webhooks.idle()
  t.same(webhooks.stats().ordering, { waitingKeys: 0, blockedKeys: 0, stale: 0, skippedStale: 0, skippedDeadLetters: 0, keyErrors: 0 }, 'a finished key leaves no line behind')
})

t.test('OpenTelemetry: keys waiting and blocked as a gauge, stale events as a counter', async (t) => {
  const otel = otelForTests()
  t.teardown(() => otel.shutdown())
  const webhooks = receiver(new MemoryInbox(), { ordering: { ...byAction, onDeadLetter: 'block' }, telemetry: { meterProvider: otel.meterProvider }, closeGraceMs: 50, retry: { attempts: 1, minDelayMs: 1, maxDelayMs: 1 } })
  t.teardown(() => webhooks.close())
  webhooks.on('action.completed', function ledger (event) { if (event.id.endsWith('bad')) throw new Error('bad') }, { name: 'ledger' })
  await webhooks.receive(delivery(keyed(`evt_otel_${process.pid}_new`, 'a', 9)))
  await webhooks.idle()
  await webhooks.receive(delivery(keyed(`evt_otel_${process.pid}_old`, 'a', 1)))
  await webhooks.receive(delivery(keyed(`evt_otel_${process.pid}_bad`, 'b', 1)))
  await webhooks.receive(delivery(keyed(`evt_otel_${process.pid}_next`, 'b', 2)))
  await until(() => webhooks.stats().ordering?.blockedKeys === 1 && webhooks.stats().ordering?.stale === 1, 'the key to block and the stale run')
  const keys = await otel.points('sir_webhooks.ordering.keys')
  t.same(keys.map((point) => [point.attributes['sir_webhooks.state'], point.value]).sort(), [['blocked', 1], ['waiting', 1]])
  const stale = await otel.points('sir_webhooks.ordering.stale')
  t.same(stale.map((point) => [point.attributes['sir_webhooks.outcome'], point.value]), [['handled', 1]])
})
