import type { Test } from 'tap'
import { RetryLater, Webhooks, type Delivery, type Inbox } from '../../src/index.js'
import { captureLogs } from '../helpers/logs.js'
import { SECRET, actionCompleted, eventually, signedRequest, type Envelope } from '../helpers/deliveries.js'

export type DurableInbox = Inbox & Required<Pick<Inbox, 'outcome' | 'counts' | 'countMatching' | 'requeue'>>

export function delivery (body: Envelope): Delivery {
  const request = signedRequest(body)
  return { contentType: 'application/json', signature: request.headers['x-sir-signature'], timestamp: request.headers['x-sir-timestamp'], rawBody: request.body }
}

/**
 * A receiver with two handlers of action.completed: `credit`, which fails (one
 * attempt: the event dies at once) while `broken.credit` is set, and `audit`,
 * which always succeeds and also takes token_pool.low_balance. Every run is
 * counted by handler and event id: what a replay runs again is what the test reads.
 */
export function replayReceiver<I extends DurableInbox> (t: Test, inbox: I): {
  webhooks: Webhooks<I>
  broken: { credit: boolean }
  runs: (handler: string, id: string) => number
  send: (count: number, type?: string) => Promise<string[]>
} {
  const broken = { credit: true }
  const counted = new Map<string, number>()
  const count = (handler: string, id: string): void => { counted.set(`${handler} ${id}`, (counted.get(`${handler} ${id}`) ?? 0) + 1) }
  const webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger, inbox, retry: { attempts: 1 } })
  t.teardown(() => webhooks.close())
  webhooks.on('action.completed', async function credit (event) {
    count('credit', event.id)
    if (broken.credit) throw new Error('partner API answered 502')
  })
  webhooks.on(['action.completed', 'token_pool.low_balance'], async function audit (event) { count('audit', event.id) })
  return {
    webhooks,
    broken,
    runs: (handler, id) => counted.get(`${handler} ${id}`) ?? 0,
    async send (howMany, type = 'action.completed') {
      const ids: string[] = []
      for (let i = 0; i < howMany; i++) {
        const event = actionCompleted({ type })
        t.equal((await webhooks.receive(delivery(event))).code, 'ACCEPTED')
        ids.push(event.id)
      }
      return ids
    }
  }
}

/** Waits until every id is in `state`, polling the store. */
export async function settled (inbox: DurableInbox, ids: readonly string[], state: 'done' | 'dead', timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (const id of ids) {
    while ((await inbox.outcome(id))?.state !== state) {
      if (Date.now() > deadline) throw new Error(`event ${id} is ${(await inbox.outcome(id))?.state ?? 'missing'}, not ${state}`)
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
  }
}

/** The running receiver's counters, polled: for runs that happen after a requeue. */
export async function runsReach (runs: () => number, expected: number, what: string): Promise<void> {
  await eventually(() => runs() >= expected, 20_000, what)
}

/**
 * The store-level replay: counts by filter, re-drives dead events (the
 * succeeded handler not run again), replays done ones (only the named handler,
 * or all), and a filter by time. Every store runs it.
 */
export async function requeueScenario (t: Test, inbox: DurableInbox): Promise<void> {
  const { broken, runs, send } = replayReceiver(t, inbox)
  const first = await send(3)
  await settled(inbox, first, 'dead')
  await new Promise((resolve) => setTimeout(resolve, 5))
  const between = new Date()
  await new Promise((resolve) => setTimeout(resolve, 5))
  const second = await send(2)
  const [pool] = await send(1, 'token_pool.low_balance')
  await settled(inbox, second, 'dead')
  await settled(inbox, [pool!], 'done')

  t.equal(await inbox.countMatching({ state: 'dead' }), 5, 'five dead events')
  t.equal(await inbox.countMatching({ state: 'dead', until: between }), 3, 'three of them received before the mark')
  t.equal(await inbox.countMatching({ state: 'dead', since: between }), 2)
  t.equal(await inbox.countMatching({ state: 'dead', handler: 'credit' }), 5, 'credit failed them all')
  t.equal(await inbox.countMatching({ state: 'dead', handler: 'audit' }), 0, 'audit handled them all')
  t.equal(await inbox.countMatching({ state: 'dead', type: 'token_pool.low_balance' }), 0)
  t.equal(await inbox.countMatching({ state: 'done', type: 'token_pool.low_balance' }), 1)
  t.same(await inbox.counts(), { pending: 0, done: 1, dead: 5 }, 'counting touched nothing')

  broken.credit = false
  t.equal(await inbox.requeue({ state: 'dead', until: between }), 3, 'the three older dead events queued again')
  await settled(inbox, first, 'done')
  for (const id of first) {
    t.equal(runs('credit', id), 2, 'credit ran again')
    t.equal(runs('audit', id), 1, 'audit, which had succeeded, did not')
    t.match(await inbox.outcome(id), { state: 'done', attempts: 1 }, 'attempts reset')
  }
  t.equal(await inbox.countMatching({ state: 'dead' }), 2, 'the newer two are still dead')
  t.equal(await inbox.requeue({ state: 'dead', handler: 'credit' }), 2)
  await settled(inbox, second, 'done')

  // A deliberate replay of done events: only audit's mark is cleared.
  t.equal(await inbox.countMatching({ state: 'done', handler: 'audit', type: 'action.completed', since: between }), 2)
  t.equal(await inbox.requeue({ state: 'done', handler: 'audit', type: 'action.completed', since: between }), 2)
  await settled(inbox, second, 'done')
  for (const id of second) {
    await runsReach(() => runs('audit', id), 2, 'audit to run again')
    t.equal(runs('credit', id), 2, 'credit, not named, did not run again')
  }
  // Without a handler: every handler of the event runs again.
  t.equal(await inbox.requeue({ state: 'done', type: 'token_pool.low_balance' }), 1)
  await runsReach(() => runs('audit', pool!), 2, 'the token_pool event replayed')
  await settled(inbox, [pool!], 'done')
  t.equal(await inbox.requeue({ state: 'done', since: new Date(Date.now() + 60_000) }), 0, 'nothing matches the future')
  t.same(await inbox.counts(), { pending: 0, done: 6, dead: 0 })
}

/**
 * `webhooks.replay(filter, { dryRun: true })`: the current handlers run on the
 * matching stored events, each run's outcome is answered, and the events are
 * left as they were. The handler context says it is a dry run.
 */
export async function dryRunScenario (t: Test, inbox: DurableInbox): Promise<void> {
  const { webhooks, broken, runs, send } = replayReceiver(t, inbox)
  // One after the other, so that the first is also the first to die: a store that
  // lists its dead events by when they finished (BullMQ) then lists them in this order.
  const ids: string[] = []
  for (let index = 0; index < 2; index++) {
    ids.push(...await send(1))
    await settled(inbox, ids, 'dead')
  }
  const contexts: unknown[] = []
  webhooks.on('action.completed', async function observe (_event, context) { contexts.push(context.replay) })

  const failing = await webhooks.replay({ state: 'dead' }, { dryRun: true })
  t.same(failing.map(({ id, handler, outcome }) => ({ id, handler, outcome })).sort((a, b) => `${a.id}${a.handler}`.localeCompare(`${b.id}${b.handler}`)), [
    { id: ids[0], handler: 'credit', outcome: 'failed' },
    { id: ids[0], handler: 'observe', outcome: 'succeeded' },
    { id: ids[1], handler: 'credit', outcome: 'failed' },
    { id: ids[1], handler: 'observe', outcome: 'succeeded' }
  ].sort((a, b) => `${a.id}${a.handler}`.localeCompare(`${b.id}${b.handler}`)), 'the handlers a redrive would run: not audit, which succeeded')
  t.match(failing.find((run) => run.outcome === 'failed'), { error: 'Error: partner API answered 502' })
  t.same(contexts, [{ dryRun: true }, { dryRun: true }], 'the context says dry run')

  broken.credit = false
  const fixed = await webhooks.replay({ state: 'dead', handler: 'credit' }, { dryRun: true, limit: 1 })
  t.same(fixed, [{ id: ids[0], handler: 'credit', outcome: 'succeeded' }], 'only the named handler, on at most limit events, oldest first')
  for (const id of ids) t.match(await inbox.outcome(id), { state: 'dead', attempts: 1 }, 'the event is still dead, its attempts unchanged')
  t.equal(runs('audit', ids[0]!), 1)

  t.equal(await webhooks.replay({ state: 'dead' }), 2, 'without dryRun: queued again')
  await settled(inbox, ids, 'done')
  await t.rejects(webhooks.replay({ state: 'pending' as 'dead' }), { name: 'WebhookOptionsError', message: /"state" must be 'dead' or 'done'/ })
  await t.rejects(webhooks.replay({ state: 'done' }, { dryRun: true, limit: 0 }), { message: /"limit" must be an integer from 1/ })
}

/**
 * More than two pages (the stores requeue 500 at a time) of done events whose
 * handler is fast enough to finish replayed events while the requeue is still
 * paging: each is replayed exactly once, not again when it is done again.
 */
export async function largeReplayScenario (t: Test, inbox: DurableInbox, count = 1_100): Promise<void> {
  const runs = new Map<string, number>()
  const webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger, inbox, retry: { attempts: 1 }, concurrency: 50 })
  t.teardown(() => webhooks.close())
  webhooks.on('token_pool.low_balance', function audit (event) { runs.set(event.id, (runs.get(event.id) ?? 0) + 1) })
  for (let sent = 0; sent < count; sent += 100) {
    const answers = await Promise.all(Array.from({ length: Math.min(100, count - sent) }, async () => await webhooks.receive(delivery(actionCompleted({ type: 'token_pool.low_balance' })))))
    t.ok(answers.every((answer) => answer.code === 'ACCEPTED'))
  }
  await eventually(() => runs.size === count, 60_000, 'every event handled')
  const deadline = Date.now() + 60_000
  while ((await inbox.counts()).done < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(await inbox.countMatching({ state: 'done' }), count)
  t.equal(await inbox.requeue({ state: 'done' }), count, 'every done event queued again, once')
  await eventually(() => [...runs.values()].every((ran) => ran >= 2), 60_000, 'every event replayed')
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.same([...new Set(runs.values())], [2], 'each ran twice: once delivered, once replayed')
}

/**
 * A requeue of dead events starts the RetryLater bound afresh, as `redrive(id)`
 * does: an event re-driven while the partner still answers 429 is deferred
 * again, not dead at its first RetryLater.
 */
export async function requeueResetsRetryLaterScenario (t: Test, inbox: DurableInbox): Promise<void> {
  const webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger, inbox, retry: { attempts: 1 }, retryLater: { maxDeferrals: 3, maxDeferredMs: 60_000 } })
  t.teardown(() => webhooks.close())
  let runs = 0
  webhooks.on('action.completed', async function callPartner () {
    runs += 1
    throw new RetryLater({ afterMs: 10 })
  }, { name: 'callPartner' })
  const id = `evt_bound_${Date.now()}`
  t.equal((await webhooks.receive(delivery(actionCompleted({ id })))).status, 200)
  await settled(inbox, [id], 'dead')
  t.equal(runs, 4, 'three deferrals, then the run that counts as the failure')
  runs = 0
  t.equal(await inbox.requeue({ state: 'dead' }), 1)
  await settled(inbox, [id], 'dead')
  t.equal(runs, 4, 'the bound starts afresh: three deferrals again, then the failure')
}

/** `requeue(filter, { max })` queues no more than the count confirmed, whatever matches by then. */
export async function requeueCapScenario (t: Test, inbox: DurableInbox): Promise<void> {
  const { send } = replayReceiver(t, inbox)
  const ids = await send(3)
  await settled(inbox, ids, 'dead')
  t.equal(await inbox.countMatching({ state: 'dead' }), 3)
  t.equal(await inbox.requeue({ state: 'dead' }, { max: 2 }), 2, 'two queued: the cap')
  const states = await Promise.all(ids.map(async (id) => (await inbox.outcome(id))?.state))
  t.equal(states.filter((state) => state === 'dead').length >= 1, true, `one left dead (${states.join(', ')})`)
  await settled(inbox, ids, 'dead')
  t.equal(await inbox.requeue({ state: 'dead' }, { max: 1 }), 1, 'one queued')
}
