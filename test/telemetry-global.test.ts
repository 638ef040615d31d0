import { test } from 'tap'
import { metrics, trace } from '@opentelemetry/api'
import { Webhooks, type Delivery } from '../src/index.js'
import { captureLogs } from './helpers/logs.js'
import { SECRET, actionCompleted, signedRequest } from './helpers/deliveries.js'
import { otelForTests, sumWhere } from './helpers/otel.js'

function delivery (): Delivery {
  const request = signedRequest(actionCompleted())
  return { contentType: 'application/json', signature: request.headers['x-sir-signature'], timestamp: request.headers['x-sir-timestamp'], rawBody: request.body }
}

// One process per test file: the global providers registered here touch no other test.
test('global providers: used when an SDK registered them before the receiver was made, and not with telemetry: false', async (t) => {
  const otel = otelForTests()
  t.teardown(async () => {
    metrics.disable()
    trace.disable()
    await otel.shutdown()
  })
  const before = new Webhooks({ secret: SECRET, logger: captureLogs().logger })
  t.teardown(() => before.close())

  t.ok(metrics.setGlobalMeterProvider(otel.meterProvider))
  t.ok(trace.setGlobalTracerProvider(otel.tracerProvider))
  const after = new Webhooks({ secret: SECRET, logger: captureLogs().logger })
  const off = new Webhooks({ secret: SECRET, logger: captureLogs().logger, telemetry: false })
  t.teardown(() => after.close())
  t.teardown(() => off.close())

  for (const webhooks of [before, after, after, off]) t.equal((await webhooks.receive(delivery())).code, 'ACCEPTED')
  t.same([before, after, off].map((webhooks) => webhooks.stats().deliveries.accepted), [1, 2, 1], 'stats() counts in every case')
  const points = await otel.points('sir_webhooks.deliveries')
  t.equal(sumWhere(points, { 'sir_webhooks.outcome': 'accepted' }), 2, 'only the receiver made after the SDK, with telemetry on, reports')
  t.equal(otel.spans().filter((span) => span.name === 'sir_webhooks receive').length, 2)
})
