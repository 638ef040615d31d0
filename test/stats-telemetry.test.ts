import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'tap'
import { Webhooks, refusalStatus, type AcceptOutcome, type Delivery, type InboxRuntime, type RefusalCode } from '../src/index.js'
import { MemoryInbox } from '../src/core/memory-inbox.js'
import { sqliteInbox } from '../src/sqlite/inbox.js'
import { captureLogs } from './helpers/logs.js'
import { SECRET, actionCompleted, eventually, gate, signedRequest, type Envelope } from './helpers/deliveries.js'
import { otelForTests, sumWhere } from './helpers/otel.js'

function delivery (body: Parameters<typeof signedRequest>[0], options: Parameters<typeof signedRequest>[1] = {}, change: Partial<Delivery> = {}): Delivery {
  const request = signedRequest(body, options)
  return {
    contentType: request.headers['content-type'],
    signature: request.headers['x-sir-signature'],
    timestamp: request.headers['x-sir-timestamp'],
    rawBody: request.body,
    ...change
  }
}

/** The memory inbox, told to answer `full` or `unavailable` for the next delivery. */
class ScriptedInbox extends MemoryInbox {
  next: AcceptOutcome | undefined
  #runtime: InboxRuntime | undefined
  override start (runtime: InboxRuntime): void {
    this.#runtime = runtime
    super.start(runtime)
  }

  runtimeForTests (): InboxRuntime {
    return this.#runtime as InboxRuntime
  }

  override accept (...args: Parameters<MemoryInbox['accept']>): AcceptOutcome {
    const scripted = this.next
    this.next = undefined
    return scripted ?? super.accept(...args)
  }
}

const minutesAgo = (minutes: number): string => new Date(Date.now() - minutes * 60_000).toISOString()

test('known traffic: stats() and the OpenTelemetry exporters count the same deliveries, runs and dead letters', async (t) => {
  const otel = otelForTests()
  t.teardown(() => otel.shutdown())
  const inbox = new ScriptedInbox()
  const webhooks = new Webhooks({
    secret: SECRET,
    logger: captureLogs().logger,
    inbox,
    bodyLimit: 4096,
    retry: { attempts: 2, minDelayMs: 1, maxDelayMs: 1 },
    telemetry: { meterProvider: otel.meterProvider, tracerProvider: otel.tracerProvider }
  })
  let flakyCalls = 0
  webhooks.on('action.completed', function creditPartner () {})
  webhooks.on('token_pool.depleted', function flaky () {
    flakyCalls += 1
    if (flakyCalls === 1) throw new Error('first try fails')
  })
  webhooks.on('campaign.paused', async function broken () { throw new Error('always fails') })

  // Six accepted: three handled at once, one retried then handled, one dead after
  // two attempts, one of a type this version does not know (no handler).
  const credits = [1, 2, 3].map(() => actionCompleted({ createdAt: minutesAgo(2) }))
  const flaky = actionCompleted({ type: 'token_pool.depleted', createdAt: minutesAgo(2) })
  const broken = actionCompleted({ type: 'campaign.paused', createdAt: minutesAgo(2) })
  const unknown = actionCompleted({ type: 'brand_new.type' })
  for (const event of [...credits, flaky, broken, unknown]) t.equal((await webhooks.receive(delivery(event))).code, 'ACCEPTED')
  // Two duplicates.
  t.equal((await webhooks.receive(delivery(credits[0] as Envelope))).code, 'DUPLICATE')
  t.equal((await webhooks.receive(delivery(flaky))).code, 'DUPLICATE')

  // One of each refusal the receiver answers with.
  const now = Math.floor(Date.now() / 1000)
  const refusals: Array<[RefusalCode, () => Promise<unknown>]> = [
    ['MISSING_SIGNATURE', () => webhooks.receive(delivery(actionCompleted(), {}, { signature: undefined }))],
    ['MALFORMED_SIGNATURE', () => webhooks.receive(delivery(actionCompleted(), {}, { signature: 'sha256=xyz' }))],
    ['SIGNATURE_MISMATCH', () => webhooks.receive(delivery(actionCompleted(), { secret: 'whsec_some_other_secret' }))],
    ['MISSING_TIMESTAMP', () => webhooks.receive(delivery(actionCompleted(), {}, { timestamp: undefined }))],
    ['INVALID_TIMESTAMP', () => webhooks.receive(delivery(actionCompleted(), {}, { timestamp: 'yesterday' }))],
    ['TIMESTAMP_OUT_OF_RANGE', () => webhooks.receive(delivery(actionCompleted(), { timestamp: now - 3600 }))],
    ['INVALID_JSON', () => webhooks.receive(delivery('{"id": not json'))],
    ['INVALID_ENVELOPE', () => webhooks.receive(delivery('{"hello":"world"}'))],
    ['EVENT_ID_TOO_LONG', () => webhooks.receive(delivery(actionCompleted({ id: 'x'.repeat(257) })))],
    ['UNSUPPORTED_MEDIA_TYPE', () => webhooks.receive(delivery(actionCompleted(), { contentType: 'text/plain' }))],
    ['BODY_TOO_LARGE', () => webhooks.receive(delivery(actionCompleted({ data: { padding: 'x'.repeat(5000) } })))],
    ['QUEUE_FULL', () => { inbox.next = 'full'; return webhooks.receive(delivery(actionCompleted())) }],
    ['INBOX_UNAVAILABLE', () => { inbox.next = 'unavailable'; return webhooks.receive(delivery(actionCompleted())) }],
    ['RAW_BODY_UNAVAILABLE', async () => webhooks.refuse('RAW_BODY_UNAVAILABLE')]
  ]
  for (const [code, send] of refusals) t.equal((await send() as { code: string }).code, code)

  await eventually(() => webhooks.stats().deadLetters === 1 && webhooks.stats().handlers.succeeded === 4, 10_000, 'handlers to finish')
  await webhooks.close()
  t.equal((await webhooks.receive(delivery(actionCompleted()))).code, 'CLOSING')

  const refusedBy = Object.fromEntries(Object.keys(refusalStatus).map((code) => [code, 1]))
  const stats = webhooks.stats()
  t.match(stats.handlers.byName, {
    creditPartner: { runs: 3, succeeded: 3, retried: 0, failed: 0 },
    flaky: { runs: 2, succeeded: 1, retried: 1, failed: 0 },
    broken: { runs: 2, succeeded: 0, retried: 1, failed: 1 }
  }, 'per handler, the same runs')
  t.same({ ...stats, handlers: { ...stats.handlers, byName: {} } }, {
    deliveries: { accepted: 6, duplicate: 2, duplicateDiffers: 0, refused: 15, refusedBy },
    queue: { waiting: 0, running: 0 },
    handlers: { succeeded: 4, retried: 2, failed: 1, byName: {} },
    deadLetters: 1,
    flow: { handlers: {}, pausedAll: false, oldestWaitingMs: undefined }
  })

  const deliveries = await otel.points('sir_webhooks.deliveries')
  t.equal(sumWhere(deliveries, { 'sir_webhooks.outcome': 'accepted' }), stats.deliveries.accepted)
  t.equal(sumWhere(deliveries, { 'sir_webhooks.outcome': 'duplicate' }), stats.deliveries.duplicate)
  t.equal(sumWhere(deliveries, { 'sir_webhooks.outcome': 'refused' }), stats.deliveries.refused)
  for (const code of Object.keys(refusalStatus)) {
    t.equal(sumWhere(deliveries, { 'sir_webhooks.outcome': 'refused', 'sir_webhooks.reason': code }), 1, code)
  }
  t.notOk(deliveries.some((point) => point.attributes['sir_webhooks.outcome'] !== 'refused' && 'sir_webhooks.reason' in point.attributes), 'a reason only on refusals')

  const durations = await otel.points('sir_webhooks.handler.duration')
  t.equal(sumWhere(durations, { 'sir_webhooks.result': 'success' }), stats.handlers.succeeded, 'one duration per successful run')
  t.equal(sumWhere(durations, { 'sir_webhooks.result': 'failure' }), stats.handlers.retried + stats.handlers.failed, 'one per failed run')
  t.equal(sumWhere(durations, { 'sir_webhooks.handler': 'creditPartner', 'sir_webhooks.event_type': 'action.completed' }), 3)
  t.equal(sumWhere(durations, { 'sir_webhooks.handler': 'broken', 'sir_webhooks.result': 'failure' }), 2)

  const lag = await otel.points('sir_webhooks.event.lag')
  t.equal(sumWhere(lag, {}), 5, "one lag per handler's first attempt of an event with createdAt")
  const lagSum = lag.reduce((sum, point) => sum + (typeof point.value === 'number' ? 0 : point.value.sum ?? 0), 0)
  t.ok(lagSum >= 5 * 119 && lagSum < 5 * 600, `lag is createdAt to handler start, in seconds (sum ${lagSum})`)

  const deadLetters = await otel.points('sir_webhooks.dead_letters')
  t.equal(sumWhere(deadLetters, { 'sir_webhooks.reason': 'handler_failed' }), stats.deadLetters)

  const queue = await otel.points('sir_webhooks.queue.size')
  t.same(queue.map((point) => [point.attributes['sir_webhooks.state'], point.value]).sort(), [['running', 0], ['waiting', 0]])

  // Spans: one per delivery answered, one per handler run, each run linked to its delivery.
  const spans = otel.spans()
  const receives = spans.filter((span) => span.name === 'sir_webhooks receive')
  t.equal(receives.length, 6 + 2 + 15)
  t.equal(receives.filter((span) => span.attributes['sir_webhooks.outcome'] === 'refused').length, 15)
  t.ok(receives.some((span) => span.attributes['sir_webhooks.reason'] === 'QUEUE_FULL' && span.status.code === 2), 'a 503 refusal is an error span')
  t.ok(receives.some((span) => span.attributes['sir_webhooks.reason'] === 'SIGNATURE_MISMATCH' && span.status.code !== 2), 'a 401 is the sender’s problem, not an error of ours')
  const acceptedSpan = (id: string): ReadableSpan | undefined => receives.find((span) => span.attributes['sir_webhooks.event_id'] === id && span.attributes['sir_webhooks.outcome'] === 'accepted')
  t.equal(acceptedSpan(unknown.id)?.attributes['sir_webhooks.event_type'], 'other', 'unknown types are "other"')
  const runs = spans.filter((span) => span.name === 'sir_webhooks handle')
  t.equal(runs.length, 7)
  for (const run of runs) {
    const delivered = acceptedSpan(String(run.attributes['sir_webhooks.event_id']))
    t.same(run.links.map((link) => link.context.spanId), [delivered?.spanContext().spanId], `run of ${String(run.attributes['sir_webhooks.handler'])} attempt ${String(run.attributes['sir_webhooks.attempt'])} links to its delivery`)
    t.equal(run.parentSpanContext, undefined, 'a handler run is a root span, not a child of whatever request was active')
  }
  const brokenRuns = runs.filter((span) => span.attributes['sir_webhooks.handler'] === 'broken')
  t.same(brokenRuns.map((span) => span.attributes['sir_webhooks.attempt']).sort(), [1, 2], 'the retry is a run of its own, linked to the same delivery')
  t.ok(brokenRuns.every((span) => span.status.code === 2 && span.events.some((event) => event.name === 'exception')), 'failed runs are error spans with the exception')
})

type ReadableSpan = ReturnType<ReturnType<typeof otelForTests>['spans']>[number]

test('queue: stats() and the gauge say how many events wait and run', async (t) => {
  const otel = otelForTests()
  t.teardown(() => otel.shutdown())
  const webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger, concurrency: 1, telemetry: { meterProvider: otel.meterProvider } })
  t.teardown(() => webhooks.close())
  const held = gate()
  let started = 0
  webhooks.on('action.completed', async () => { started += 1; await held.promise })
  for (let index = 0; index < 3; index++) await webhooks.receive(delivery(actionCompleted()))
  await eventually(() => started === 1, 5000, 'the first handler')
  t.same(webhooks.stats().queue, { waiting: 2, running: 1 })
  const queue = await otel.points('sir_webhooks.queue.size')
  t.equal(sumWhere(queue, { 'sir_webhooks.state': 'waiting' }), 2)
  t.equal(sumWhere(queue, { 'sir_webhooks.state': 'running' }), 1)
  held.open()
  await eventually(() => webhooks.stats().handlers.succeeded === 3, 5000, 'all three')
  t.same(webhooks.stats().queue, { waiting: 0, running: 0 })
})

test('telemetry option: a wrong value is refused at construction, naming the option', async (t) => {
  t.throws(() => new Webhooks({ secret: SECRET, telemetry: 'on' as never }), /"telemetry" must be an object/)
  t.throws(() => new Webhooks({ secret: SECRET, telemetry: { meterProvider: {} as never } }), /"telemetry.meterProvider" must be an OpenTelemetry MeterProvider/)
  t.throws(() => new Webhooks({ secret: SECRET, telemetry: { tracerProvider: 42 as never } }), /"telemetry.tracerProvider" must be an OpenTelemetry TracerProvider/)
})

test('a durable inbox (SQLite): the handler spans of each attempt link to the delivery, stats count the runs', async (t) => {
  const otel = otelForTests()
  t.teardown(() => otel.shutdown())
  const dir = mkdtempSync(join(tmpdir(), 'sir-telemetry-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const webhooks = new Webhooks({
    secret: SECRET,
    logger: captureLogs().logger,
    inbox: sqliteInbox({ path: join(dir, 'inbox.db'), pollIntervalMs: 20 }),
    retry: { attempts: 2, minDelayMs: 1, maxDelayMs: 1 },
    telemetry: { meterProvider: otel.meterProvider, tracerProvider: otel.tracerProvider }
  })
  t.teardown(() => webhooks.close())
  let calls = 0
  webhooks.on('action.completed', function flaky () {
    calls += 1
    if (calls === 1) throw new Error('first try fails')
  })
  const event = actionCompleted()
  t.equal((await webhooks.receive(delivery(event))).code, 'ACCEPTED')
  await eventually(() => webhooks.stats().handlers.succeeded === 1, 10_000, 'the retry to succeed')
  t.match(webhooks.stats(), { deliveries: { accepted: 1 }, handlers: { succeeded: 1, retried: 1, failed: 0 }, deadLetters: 0 })
  const spans = otel.spans()
  const received = spans.find((span) => span.name === 'sir_webhooks receive')
  const runs = spans.filter((span) => span.name === 'sir_webhooks handle')
  t.same(runs.map((span) => span.attributes['sir_webhooks.attempt']), [1, 2])
  t.same(runs.map((span) => span.links[0]?.context.spanId), [received?.spanContext().spanId, received?.spanContext().spanId], 'both attempts, each run from the event read back from the file, link to the delivery')
})

test('a duplicate whose body differs: 200 duplicate, a warning, stats() and the deliveries counter say so', async (t) => {
  const otel = otelForTests()
  t.teardown(() => otel.shutdown())
  const logs = captureLogs()
  const webhooks = new Webhooks({ secret: SECRET, logger: logs.logger, telemetry: { meterProvider: otel.meterProvider, tracerProvider: otel.tracerProvider } })
  t.teardown(() => webhooks.close())
  const handled: unknown[] = []
  webhooks.on('action.completed', (event) => { handled.push(event.data) })
  const first = actionCompleted({ data: { actionId: 'act_1', tokensDistributed: 50 } })
  t.equal((await webhooks.receive(delivery(first))).code, 'ACCEPTED')
  // The same bytes re-signed later: a plain duplicate.
  t.equal((await webhooks.receive(delivery(first, { timestamp: Math.floor(Date.now() / 1000) - 30 }))).code, 'DUPLICATE')
  // The same id, other data, of the same length and of another length.
  t.equal((await webhooks.receive(delivery({ ...first, data: { actionId: 'act_1', tokensDistributed: 60 } }))).code, 'DUPLICATE')
  t.equal((await webhooks.receive(delivery({ ...first, data: { actionId: 'act_1', tokensDistributed: 5000 } }))).code, 'DUPLICATE')
  // A long body whose difference is at its end, past the sampled middle.
  const long = actionCompleted({ data: { note: 'x'.repeat(8000), tokensDistributed: 1 } })
  t.equal((await webhooks.receive(delivery(long))).code, 'ACCEPTED')
  t.equal((await webhooks.receive(delivery({ ...long, data: { note: 'x'.repeat(8000), tokensDistributed: 2 } }))).code, 'DUPLICATE')
  await eventually(() => handled.length === 2, 5000, 'the two accepted events')
  t.same(handled[0], first.data, 'the handler saw the first body only')

  t.match(webhooks.stats().deliveries, { accepted: 2, duplicate: 4, duplicateDiffers: 3 })
  const warnings = logs.entries().filter((entry) => entry.level === 40 && /body differs/.test(String(entry.msg)))
  t.same(warnings.map((entry) => (entry.event as { id: string }).id), [first.id, first.id, long.id], 'one warning per differing duplicate, naming the event')
  t.notOk(logs.text().includes('tokensDistributed'), 'never the bodies themselves')

  const deliveries = await otel.points('sir_webhooks.deliveries')
  t.equal(sumWhere(deliveries, { 'sir_webhooks.outcome': 'duplicate' }), 4, 'every duplicate counts as one')
  t.equal(sumWhere(deliveries, { 'sir_webhooks.outcome': 'duplicate', 'sir_webhooks.body_differs': true }), 3, 'those whose body differs are marked')
  const spans = otel.spans().filter((span) => span.name === 'sir_webhooks receive' && span.attributes['sir_webhooks.body_differs'] === true)
  t.equal(spans.length, 3, 'and so are their spans')
})

test('span attributes and statuses are capped: a long id, handler name or error message is cut', async (t) => {
  const otel = otelForTests()
  t.teardown(() => otel.shutdown())
  const inbox = new ScriptedInbox()
  const webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger, inbox, retry: { attempts: 1 }, telemetry: { tracerProvider: otel.tracerProvider } })
  t.teardown(() => webhooks.close())
  const longName = 'h'.repeat(2000)
  webhooks.on('action.completed', () => { throw new Error('e'.repeat(50_000)) }, { name: longName })
  t.equal((await webhooks.receive(delivery(actionCompleted()))).code, 'ACCEPTED')
  // An event recorded before ids were bounded, as a durable inbox may still hold: run as an inbox runs it.
  const runtime = (inbox as unknown as { runtimeForTests: () => InboxRuntime }).runtimeForTests()
  const handler = runtime.handlersFor('action.completed')[0]
  const old = { ...actionCompleted(), id: 'i'.repeat(100_000) }
  t.throws(() => runtime.runHandler({ event: old as never, handler: handler!, attempt: 1, receivedAt: Date.now() }))
  await eventually(() => otel.spans().filter((span) => span.name === 'sir_webhooks handle').length === 2, 5000, 'both runs')
  for (const span of otel.spans()) {
    for (const [key, value] of Object.entries(span.attributes)) {
      t.ok(typeof value !== 'string' || value.length <= 256, `${span.name} ${key}: ${String(value).length} characters`)
    }
    t.ok((span.status.message ?? '').length <= 1024, `${span.name} status message`)
    for (const event of span.events) {
      for (const [key, value] of Object.entries(event.attributes ?? {})) {
        t.ok(typeof value !== 'string' || value.length <= 4096, `${event.name} ${key}: ${String(value).length} characters`)
      }
    }
  }
  const run = otel.spans().find((span) => span.name === 'sir_webhooks handle' && String(span.attributes['sir_webhooks.event_id']).startsWith('iii'))
  t.equal(run?.attributes['sir_webhooks.event_id'], `${'i'.repeat(255)}…`, 'the id cut to 256 characters, marked')
  t.match(run?.status.message, /^e+…$/, 'the message cut, marked')
})
