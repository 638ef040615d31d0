import { test } from 'tap'
import { Webhooks, WebhookOptionsError, type Delivery, type Inbox } from '../src/index.js'
import { backoffDelay } from '../src/core/backoff.js'
import { MemoryInbox } from '../src/core/memory-inbox.js'
import { defaults } from '../src/core/options.js'
import type { WebhookLogger } from '../src/core/logger.js'
import { captureLogs } from './helpers/logs.js'
import { SECRET, actionCompleted, eventually, signedRequest } from './helpers/deliveries.js'

function delivery (body: Parameters<typeof signedRequest>[0], options: Parameters<typeof signedRequest>[1] = {}): Delivery {
  const request = signedRequest(body, options)
  return {
    contentType: request.headers['content-type'],
    signature: request.headers['x-sir-signature'],
    timestamp: request.headers['x-sir-timestamp'],
    rawBody: request.body
  }
}

test('options: defaults, and every bad value refused with a message naming the option', async (t) => {
  const webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger })
  t.match(webhooks.options, {
    toleranceSeconds: 300,
    concurrency: 10,
    maxQueueSize: 10_000,
    retry: { attempts: 5, minDelayMs: 500, maxDelayMs: 30_000 },
    dedupe: { ttlSeconds: 604_800, maxEntries: 100_000 },
    bodyLimit: 1_048_576,
    retryAfterSeconds: 5,
    closeGraceMs: 10_000
  })
  t.equal(defaults.toleranceSeconds, 300)
  const cases: Array<[unknown, RegExp]> = [
    [undefined, /options must be an object/],
    [{}, /"secret" must be a non-empty string or a non-empty array of strings \(newest first\), got nothing/],
    [{ secret: '' }, /"secret" must be a non-empty string/],
    [{ secret: [] }, /"secret" must be a non-empty string or a non-empty array/],
    [{ secret: ['whsec_a', 42] }, /"secret\[1\]" must be a non-empty string/],
    [{ secret: ' whsec_a\n' }, /"secret" has leading or trailing whitespace/],
    [{ secret: SECRET, toleranceSeconds: -1 }, /sir-webhooks: "toleranceSeconds" must be a positive integer, got -1/],
    [{ secret: SECRET, concurrency: 1.5 }, /"concurrency" must be a positive integer, got 1.5/],
    [{ secret: SECRET, maxQueueSize: '10' }, /"maxQueueSize" must be a positive integer, got "10"/],
    [{ secret: SECRET, retry: 3 }, /"retry" must be an object, got 3/],
    [{ secret: SECRET, retry: { attempts: 0 } }, /"retry.attempts" must be a positive integer, got 0/],
    [{ secret: SECRET, retry: { minDelayMs: 100, maxDelayMs: 10 } }, /"retry.maxDelayMs" \(10\) must not be less than "retry.minDelayMs" \(100\)/],
    [{ secret: SECRET, dedupe: { ttlSeconds: 0 } }, /"dedupe.ttlSeconds" must be a positive integer/],
    [{ secret: SECRET, dedupe: null }, /"dedupe" must be an object, got null/],
    [{ secret: SECRET, bodyLimit: 0 }, /"bodyLimit" must be a positive integer/],
    [{ secret: SECRET, closeGraceMs: -5 }, /"closeGraceMs" must be a non-negative integer, got -5/],
    [{ secret: SECRET, clock: 5 }, /"clock" must be a function/],
    [{ secret: SECRET, logger: console }, /"logger" must be a pino logger/]
  ]
  for (const [options, message] of cases) {
    t.throws(() => new Webhooks(options as never), message, JSON.stringify(options) ?? 'undefined')
  }
  const error = (() => { try { return new Webhooks({ secret: 'whsec_never_printed', concurrency: -1 }) } catch (caught) { return caught } })()
  t.ok(error instanceof WebhookOptionsError)
  t.match(error, { code: 'INVALID_OPTION' })
  t.notOk(String((error as Error).message).includes('whsec_never_printed'), 'a secret is never echoed in an option error')
  t.throws(() => new Webhooks({ secret: ['whsec_ok', '  '] }), /"secret\[1\]" has leading or trailing whitespace/, 'the message names the index, not the value')
})

test('on/onAny/onError/onDeadLetter refuse what is not a handler', async (t) => {
  const webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger })
  t.throws(() => webhooks.on('action.completed', 'nope' as never), /on\(\): the handler must be a function, got string/)
  t.throws(() => webhooks.on([] as never, () => {}), /"type" must be an event type or a non-empty array/)
  t.throws(() => webhooks.onAny(null as never), /onAny\(\)/)
  t.throws(() => webhooks.onError(1 as never), /onError\(\)/)
  t.throws(() => webhooks.onDeadLetter({} as never), /onDeadLetter\(\)/)
})

test('off(handler) removes a handler from everything it was registered with', async (t) => {
  const webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger })
  const calls: string[] = []
  const everywhere = (event: { type: string }): void => { calls.push(event.type) }
  webhooks.on(['action.completed', 'action.failed'], everywhere)
  webhooks.onAny(everywhere)
  webhooks.off(everywhere)
  const kept = (): void => { calls.push('kept') }
  webhooks.on('action.completed', kept)
  t.equal((await webhooks.receive(delivery(actionCompleted()))).status, 200)
  await eventually(() => calls.length === 1)
  await webhooks.close()
  t.same(calls, ['kept'])
})

test('an event with no handler is accepted and finished at once', async (t) => {
  const logs = captureLogs()
  const webhooks = new Webhooks({ secret: SECRET, logger: logs.logger })
  const answer = await webhooks.receive(delivery(actionCompleted({ type: 'campaign.activated' })))
  t.equal(answer.code, 'ACCEPTED')
  t.equal(webhooks.inbox.size, 0, 'nothing waits in the queue')
  t.ok(logs.entries().some((entry) => entry.msg === 'no handler for event type'))
  await webhooks.close()
})

test('callbacks that throw are logged and do not stop other callbacks', async (t) => {
  const logs = captureLogs()
  const webhooks = new Webhooks({ secret: SECRET, logger: logs.logger, retry: { attempts: 1, minDelayMs: 0, maxDelayMs: 0 } })
  const reached: string[] = []
  webhooks.on('action.completed', () => { throw new Error('handler') })
  webhooks.onError(() => { throw new Error('onError itself broke') })
  webhooks.onError(() => { reached.push('second onError') })
  webhooks.onDeadLetter(() => { reached.push('dead letter') })
  await webhooks.receive(delivery(actionCompleted()))
  await eventually(() => reached.length === 2)
  t.same(reached, ['second onError', 'dead letter'])
  t.ok(logs.entries().some((entry) => entry.msg === 'an onError callback threw' && (entry.err as { message?: string }).message === 'onError itself broke'))
  await webhooks.close()
})

test('an inbox that throws or fails to start answers 503 and records nothing', async (t) => {
  const logs = captureLogs()
  const seen = new Set<string>()
  let failing = true
  const throwing: Inbox = {
    start () {},
    accept (event) {
      if (failing) throw new Error('disk full')
      if (seen.has(event.id)) return 'duplicate'
      seen.add(event.id)
      return 'accepted'
    },
    async close () {}
  }
  const webhooks = new Webhooks({ secret: SECRET, logger: logs.logger, inbox: throwing })
  const answer = await webhooks.receive(delivery(actionCompleted()))
  t.equal(answer.status, 503)
  t.equal(answer.code, 'INBOX_UNAVAILABLE')
  t.equal(answer.headers['retry-after'], '5')
  t.ok(logs.entries().some((entry) => entry.msg === 'the inbox failed to record the event'))
  const event = actionCompleted()
  t.equal((await webhooks.receive(delivery(event))).code, 'INBOX_UNAVAILABLE')
  failing = false
  t.equal((await webhooks.receive(delivery(event))).code, 'ACCEPTED', 'the sender\'s retry is a new event, not a duplicate')
  await webhooks.close()

  const neverStarts: Inbox = {
    async start () { throw new Error('cannot open the database') },
    accept: () => 'accepted',
    async close () {}
  }
  const broken = new Webhooks({ secret: SECRET, logger: logs.logger, inbox: neverStarts })
  t.equal((await broken.receive(delivery(actionCompleted()))).code, 'INBOX_UNAVAILABLE')
  t.ok(logs.entries().some((entry) => entry.msg === 'the inbox failed to start; deliveries are answered 503 until it does'))
  await broken.close()
})

test('a memory inbox belongs to one receiver', async (t) => {
  const inbox = new MemoryInbox()
  const first = new Webhooks({ secret: SECRET, inbox, logger: captureLogs().logger })
  t.throws(() => new Webhooks({ secret: SECRET, inbox, logger: captureLogs().logger }), /an inbox belongs to one receiver/)
  await first.close()
})

test('dedupe forgets an id after its retention, measured on the receiver\'s clock', async (t) => {
  let now = Date.now()
  const webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger, clock: () => now, dedupe: { ttlSeconds: 60 } })
  const event = actionCompleted()
  t.equal((await webhooks.receive(delivery(event, { timestamp: Math.floor(now / 1000) }))).code, 'ACCEPTED')
  now += 60_000
  t.equal((await webhooks.receive(delivery(event, { timestamp: Math.floor(now / 1000) }))).code, 'DUPLICATE', 'remembered for the whole 60 s')
  now += 60_001
  t.equal((await webhooks.receive(delivery(event, { timestamp: Math.floor(now / 1000) }))).code, 'ACCEPTED', 'over 60 s after it was last seen, the id is new again')
  await webhooks.close()
})

test('dedupe is bounded by maxEntries: the least recently seen id goes first', async (t) => {
  const webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger, dedupe: { maxEntries: 2 } })
  const [a, b, c] = [actionCompleted(), actionCompleted(), actionCompleted()]
  for (const event of [a!, b!, c!]) t.equal((await webhooks.receive(delivery(event))).code, 'ACCEPTED')
  t.equal((await webhooks.receive(delivery(c!))).code, 'DUPLICATE')
  t.equal((await webhooks.receive(delivery(a!))).code, 'ACCEPTED', 'the oldest id was evicted')
  await webhooks.close()
})

test('dedupe forgets the least recently seen id, not the first added: a duplicate counts as seen (issue 12)', async (t) => {
  const webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger, dedupe: { maxEntries: 2 } })
  const [a, b, c] = [actionCompleted(), actionCompleted(), actionCompleted()]
  t.equal((await webhooks.receive(delivery(a!))).code, 'ACCEPTED')
  t.equal((await webhooks.receive(delivery(b!))).code, 'ACCEPTED')
  t.equal((await webhooks.receive(delivery(a!))).code, 'DUPLICATE', 'A seen again')
  t.equal((await webhooks.receive(delivery(c!))).code, 'ACCEPTED', 'C pushes out B, the least recently seen')
  t.equal((await webhooks.receive(delivery(a!))).code, 'DUPLICATE', 'A is still remembered')
  t.equal((await webhooks.receive(delivery(b!))).code, 'ACCEPTED', 'B was forgotten')
  await webhooks.close()
})

test('dedupe: a duplicate restarts the id\'s retention window', async (t) => {
  let now = 1_000_000
  const webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger, dedupe: { ttlSeconds: 10 }, clock: () => now })
  const event = actionCompleted()
  const at = (ms: number): ReturnType<typeof delivery> => { now = ms; return delivery(event, { timestamp: Math.floor(ms / 1000) }) }
  t.equal((await webhooks.receive(at(1_000_000))).code, 'ACCEPTED')
  t.equal((await webhooks.receive(at(1_009_000))).code, 'DUPLICATE', 'seen again after 9 s')
  t.equal((await webhooks.receive(at(1_018_000))).code, 'DUPLICATE', '18 s after the first, 9 s after the last')
  t.equal((await webhooks.receive(at(1_028_001))).code, 'ACCEPTED', 'over 10 s after it was last seen')
  await webhooks.close()
})

test('close() is idempotent and later deliveries get 503 CLOSING', async (t) => {
  const webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger })
  const first = webhooks.close()
  t.equal(webhooks.close(), first, 'the same promise')
  await first
  const answer = await webhooks.receive(delivery(actionCompleted()))
  t.equal(answer.code, 'CLOSING')
  t.equal(answer.status, 503)
})

test('backoff: full jitter under an exponential ceiling capped at maxDelayMs', async (t) => {
  const retry = { attempts: 10, minDelayMs: 100, maxDelayMs: 1000 }
  t.equal(backoffDelay(1, retry, () => 0.999), 99)
  t.equal(backoffDelay(2, retry, () => 0.999), 199)
  t.equal(backoffDelay(3, retry, () => 0.5), 200)
  t.equal(backoffDelay(8, retry, () => 0.999), 999, 'capped')
  t.equal(backoffDelay(8, retry, () => 0), 0, 'full jitter reaches zero')
})

test('refusals without a body or with a stray encoding are decided before verifying', async (t) => {
  const webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger })
  t.equal((await webhooks.receive({ rawBody: new Uint8Array() })).code, 'UNSUPPORTED_MEDIA_TYPE')
  t.equal((await webhooks.receive({ ...delivery(actionCompleted()), contentEncoding: 'identity' })).code, 'ACCEPTED', 'identity is no encoding')
  t.equal((await webhooks.receive({ ...delivery(actionCompleted()), contentEncoding: 'br' })).code, 'UNSUPPORTED_MEDIA_TYPE')
  t.equal(webhooks.refusal('RAW_BODY_UNAVAILABLE').status, 500)
  await webhooks.close()
})

test('a handler registered while an event is in flight is not run for it untracked', async (t) => {
  const logs = captureLogs()
  const webhooks = new Webhooks({ secret: SECRET, logger: logs.logger, retry: { attempts: 1, minDelayMs: 0, maxDelayMs: 0 } })
  const calls: string[] = []
  webhooks.on('action.completed', () => { calls.push('first') })
  t.equal((await webhooks.receive(delivery(actionCompleted()))).code, 'ACCEPTED')
  webhooks.on('action.completed', () => { calls.push('late') })
  await webhooks.close()
  t.same(calls, ['first'], 'the event runs the handlers it was accepted with')

  const twice = new Webhooks({ secret: SECRET, logger: logs.logger })
  let runs = 0
  twice.on(['action.completed', 'action.completed'], () => { runs += 1 })
  await twice.receive(delivery(actionCompleted()))
  await twice.close()
  t.equal(runs, 1, 'a type listed twice registers the handler once')
})

test('close() is bounded even when an onDeadLetter callback never settles', async (t) => {
  const logs = captureLogs()
  // 20 events and a 200 ms grace: one grace for the handlers and one for all the
  // callbacks is 400 ms; a wait per event would be 4 s or more. The upper bound is
  // 5 times the right answer, for a loaded machine, and half the wrong one.
  const graceMs = 200
  const webhooks = new Webhooks({ secret: SECRET, logger: logs.logger, closeGraceMs: graceMs })
  webhooks.on('action.completed', () => new Promise(() => {}))
  webhooks.onDeadLetter(() => new Promise(() => {}))
  const ids: string[] = []
  for (let index = 0; index < 20; index++) {
    const event = actionCompleted()
    ids.push(event.id)
    await webhooks.receive(delivery(event))
  }
  const started = Date.now()
  await webhooks.close()
  const elapsed = Date.now() - started
  t.ok(elapsed >= 2 * graceMs - 5, `close() waited out both grace periods (${elapsed} ms)`)
  t.ok(elapsed < 2000, `close() resolved within two grace periods and change, not one per event (${elapsed} ms)`)
  const logged = logs.entries().filter((entry) => entry.msg === 'event dead-lettered: shutdown came before it finished').map((entry) => (entry.event as { id: string }).id)
  t.same(logged.sort(), ids.sort(), 'every left-over event is logged with its id')
  t.ok(logs.entries().some((entry) => entry.msg === 'onDeadLetter callbacks did not finish within the grace period; close() goes on'))
})

test('a long line of waiting handlers runs to the end, first in first out, one at a time', async (t) => {
  const webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger, concurrency: 1 })
  const started: string[] = []
  let running = 0
  let mostAtOnce = 0
  webhooks.on('action.completed', async (event) => {
    running += 1
    mostAtOnce = Math.max(mostAtOnce, running)
    started.push(event.id)
    await Promise.resolve()
    running -= 1
  })
  const events = Array.from({ length: 3000 }, () => actionCompleted())
  const codes = new Set<string>()
  for (const event of events) codes.add((await webhooks.receive(delivery(event))).code)
  t.same([...codes], ['ACCEPTED'])
  await eventually(() => started.length === events.length)
  t.same(started, events.map((event) => event.id), 'in the order accepted')
  t.equal(mostAtOnce, 1)
  await webhooks.close()
})

test('an accepted delivery is logged at debug with its event id and type, and not built at all when debug is off', async (t) => {
  const logs = captureLogs('debug')
  const webhooks = new Webhooks({ secret: SECRET, logger: logs.logger })
  t.teardown(() => webhooks.close())
  const event = actionCompleted()
  t.equal((await webhooks.receive(delivery(event))).code, 'ACCEPTED')
  t.match(logs.entries().find((entry) => entry.msg === 'webhook accepted'), { level: 20, event: { id: event.id, type: event.type }, secretIndex: 0 })

  // A logger that says debug is off is never handed the line's fields.
  const debugCalls: unknown[] = []
  const quiet: WebhookLogger = {
    child: () => quiet,
    debug: (...args: unknown[]) => { debugCalls.push(args) },
    info () {},
    warn () {},
    error () {},
    isLevelEnabled: (level) => level !== 'debug'
  }
  const quietWebhooks = new Webhooks({ secret: SECRET, logger: quiet })
  t.teardown(() => quietWebhooks.close())
  t.equal((await quietWebhooks.receive(delivery(actionCompleted()))).code, 'ACCEPTED')
  t.same(debugCalls, [])
})
