import t from 'tap'
import { RetryLater, Webhooks, WebhookOptionsError, type AcceptOutcome, type AnyEvent, type Inbox, type InboxRuntime } from '../src/index.js'
import { MemoryInbox } from '../src/core/memory-inbox.js'
import { MemoryFlowStore } from '../src/core/flow/memory-store.js'
import { FlowGate } from '../src/core/flow/gate.js'
import { runFlowAttempt } from '../src/core/flow/attempt.js'
import { captureLogger, delivery, event, receiver, until } from './inbox-contract/support.js'

/** An inbox without flow control, as the SQLite and Postgres inboxes are today: the memory inbox minus its flowStore(). */
class PlainInbox implements Inbox {
  readonly #inner = new MemoryInbox()
  start (runtime: InboxRuntime): void { this.#inner.start(runtime) }
  accept (event: AnyEvent, receivedAt: number): AcceptOutcome { return this.#inner.accept(event, receivedAt) }
  async close (graceMs: number): Promise<void> { await this.#inner.close(graceMs) }
  get size (): number { return this.#inner.size }
}

t.test('concurrency and rate are checked at registration, with messages naming the option', async (t) => {
  const webhooks = receiver(new MemoryInbox())
  t.teardown(() => webhooks.close())
  const cases: Array<[unknown, RegExp]> = [
    [{ concurrency: 0 }, /^sir-webhooks: on\(\): "concurrency" must be a positive integer, got 0$/],
    [{ concurrency: 1.5 }, /"concurrency" must be a positive integer, got 1.5/],
    [{ rate: 20 }, /"rate" must be an object such as \{ perSecond: 20, burst: 5 \}, got 20/],
    [{ rate: {} }, /"rate.perSecond" must be a positive number, got undefined/],
    [{ rate: { perSecond: -1 } }, /"rate.perSecond" must be a positive number, got -1/],
    [{ rate: { perSecond: 5, burst: 0 } }, /"rate.burst" must be a positive integer, got 0/],
    [{ rate: { perSecond: 5, perMinute: 3 } }, /unknown option "rate.perMinute"/]
  ]
  for (const [options, message] of cases) {
    t.throws(() => webhooks.on('action.completed', async function h () {}, options as never), { name: 'WebhookOptionsError', message }, JSON.stringify(options))
  }
  t.doesNotThrow(() => webhooks.on('action.completed', async function h () {}, { concurrency: 2, rate: { perSecond: 0.5 } }))
  t.throws(() => new Webhooks({ secret: 'whsec_x', retryLater: { maxDeferrals: -1 } }), /"retryLater.maxDeferrals" must be a non-negative integer, got -1/)
  t.throws(() => new Webhooks({ secret: 'whsec_x', retryLater: { maxDeferedMs: 5 } as never }), /options.retryLater\): unknown option "maxDeferedMs"; did you mean "maxDeferredMs"\?/)
  t.throws(() => new RetryLater({ afterMs: -5 }), /RetryLater "afterMs" must be a non-negative number of milliseconds, got -5/)
  t.equal(new RetryLater().afterMs, 1000, 'one second when not said')
  t.throws(() => webhooks.pause('nobody'), { name: 'WebhookOptionsError', message: /pause\(handlerName\): no handler of this receiver is named "nobody"/ })
})

t.test('an inbox without flow control refuses rate, concurrency and pause() naming the inbox, and RetryLater there is an ordinary failure', async (t) => {
  const webhooks = receiver(new PlainInbox(), { retry: { attempts: 3, minDelayMs: 1, maxDelayMs: 5 } })
  t.teardown(() => webhooks.close())
  t.throws(() => webhooks.on('action.completed', async function pace () {}, { rate: { perSecond: 20 } }), {
    name: 'WebhookOptionsError',
    message: /on\(\): "rate" needs an inbox with flow control, and the inbox PlainInbox has none/
  })
  t.throws(() => webhooks.on('action.completed', async function pace () {}, { concurrency: 1 }), /"concurrency" needs an inbox with flow control, and the inbox PlainInbox has none/)
  t.throws(() => webhooks.pause(), WebhookOptionsError)
  t.throws(() => webhooks.resume(), /resume\(\): the inbox PlainInbox has no flow control, so nothing can be paused/)
  const attempts: number[] = []
  const deadLetters: number[] = []
  webhooks.onDeadLetter((dead) => { deadLetters.push(dead.attempts) })
  webhooks.on('action.completed', async function callPartner (_event, { attempt }) {
    attempts.push(attempt)
    throw new RetryLater({ afterMs: 1 })
  })
  await webhooks.receive(delivery(event('evt_plain_retry_later')))
  await until(() => deadLetters.length === 1, 'the dead letter')
  t.same(attempts, [1, 2, 3], 'each RetryLater used an attempt')
  t.same(deadLetters, [3])
  const warned = webhooks.log.filter((entry) => entry.level === 'warn' && /RetryLater, but this inbox has no flow control/.test(entry.msg ?? ''))
  t.equal(warned.length, 1, 'said once, not per run')
  t.equal(webhooks.health().status, 'ok', 'no pause state to report')
  t.same(webhooks.stats().flow, { handlers: {}, pausedAll: false, oldestWaitingMs: undefined })
})

t.test('the memory token bucket: burst, then one token per 1/perSecond; a reservation puts the next caller further back', async (t) => {
  let now = 1_000_000
  const store = new MemoryFlowStore(() => now)
  const rate = { perSecond: 10, burst: 2 }
  t.equal(store.takeToken('h', rate), 0)
  t.equal(store.takeToken('h', rate), 0, 'the burst')
  t.equal(store.takeToken('h', rate), 100, 'then 100 ms to the next token, nothing taken')
  t.equal(store.takeToken('h', rate), 100)
  now += 100
  t.equal(store.takeToken('h', rate), 0)
  t.equal(store.takeToken('h', rate, true), 100, 'reserved: the token at +100 ms is this caller\'s')
  t.equal(store.takeToken('h', rate, true), 200, 'so the next waits for the one after')
  t.equal(store.takeToken('other', rate), 0, 'one bucket per handler')
  now += 10_000
  t.equal(store.takeToken('h', rate), 0)
  t.equal(store.takeToken('h', rate), 0)
  t.equal(store.takeToken('h', rate), 100, 'never more than the burst saved up')
})

t.test('runFlowAttempt: a store that cannot answer puts the run off, uses no attempt, and the next attempt runs it', async (t) => {
  let fail = true
  const store = new MemoryFlowStore()
  const flaky = {
    scope: 'test',
    takeToken: async (handler: string, rate: { perSecond: number, burst: number }, reserve: boolean) => {
      if (fail) throw new Error('connection is closed')
      return store.takeToken(handler, rate, reserve)
    },
    setPaused: () => {},
    pauseState: () => store.pauseState()
  }
  const logger = captureLogger()
  const gate = new FlowGate(flaky, { maxDeferrals: 100, maxDeferredMs: 60_000 }, logger)
  const ran: string[] = []
  const handler = { name: 'callPartner', fn: () => { ran.push('callPartner') }, limits: { rate: { perSecond: 10, burst: 1 } } }
  const runtime = {
    logger,
    handlersFor: () => [handler],
    runHandler: (run: { handler: typeof handler }) => run.handler.fn(),
    handlerSucceeded: () => {}
  } as unknown as InboxRuntime
  const event = { id: 'evt_flaky_store', type: 'action.completed', createdAt: '2026-05-10T09:12:00Z', data: {} } as unknown as AnyEvent
  const first = await runFlowAttempt(runtime, gate, { event, receivedAt: 0, attempt: 1 }, [])
  t.same(first.failures, [], 'not a failure')
  t.match(first.deferred, [{ key: 'callPartner', retryInMs: 1000 }])
  t.same(ran, [])
  t.match(logger.entries, [{ level: 'warn', msg: /flow control could not ask its store/ }])
  fail = false
  const second = await runFlowAttempt(runtime, gate, { event, receivedAt: 0, attempt: 1 }, first.succeeded, first)
  t.same(second.succeeded, ['callPartner'])
  t.same(ran, ['callPartner'])
})

t.test('the RetryLater bound in time: a deferral that would end past maxDeferredMs from the first is a failure, said in a warning', async (t) => {
  const logger = captureLogger()
  const gate = new FlowGate(new MemoryFlowStore(), { maxDeferrals: 100, maxDeferredMs: 10_000 }, logger)
  const later = new RetryLater({ afterMs: 4_000 })
  const first = gate.retryLater('callPartner', later, undefined, 1_000_000)
  t.same(first, { deferMs: 4_000, record: { count: 1, firstAt: 1_000_000 } })
  t.same(gate.retryLater('callPartner', later, first?.record, 1_004_000)?.record, { count: 2, firstAt: 1_000_000 }, 'ends at +8 s: within')
  t.equal(gate.retryLater('callPartner', later, { count: 2, firstAt: 1_000_000 }, 1_008_000), undefined, 'would end at +12 s: past 10 s')
  t.match(logger.entries, [{ level: 'warn', msg: /RetryLater past its bound/, fields: { handler: 'callPartner', deferrals: 2, deferredForMs: 8_000 } }])
  t.equal(gate.retryLater('callPartner', new Error('boom'), undefined, 0), undefined, 'any other error is a failure')
  const lookalike = Object.assign(new Error('from another copy'), { name: 'RetryLater', code: 'RETRY_LATER', afterMs: 5 })
  t.equal(gate.retryLater('callPartner', lookalike, undefined, 0)?.deferMs, 5, 'a RetryLater from another copy of the package is one too')
})
