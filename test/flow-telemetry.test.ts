import t from 'tap'
import { MemoryInbox } from '../src/core/memory-inbox.js'
import { otelForTests } from './helpers/otel.js'
import { delivery, event, receiver, sleep, until } from './inbox-contract/support.js'

t.test('OpenTelemetry: deferrals counted by handler and reason, as stats() counts them; the oldest waiting event\'s age', async (t) => {
  const otel = otelForTests()
  t.teardown(() => otel.shutdown())
  const webhooks = receiver(new MemoryInbox(), { telemetry: { meterProvider: otel.meterProvider } })
  t.teardown(() => webhooks.close())
  let runs = 0
  webhooks.on('action.completed', async function callPartner () { runs += 1 }, { name: 'callPartner', rate: { perSecond: 20, burst: 1 } })
  await webhooks.pause()
  for (let index = 0; index < 4; index++) await webhooks.receive(delivery(event(`evt_otel_flow_${index}`)))
  await sleep(400)
  const age = await otel.points('sir_webhooks.queue.oldest_age')
  t.equal(age.length, 1)
  t.ok(Number(age[0]?.value) >= 0.3, `the oldest event has waited ${String(age[0]?.value)} s`)
  await webhooks.resume()
  await until(() => runs === 4, 'the backlog to drain')
  const deferred = await otel.points('sir_webhooks.handler.deferred')
  const counted = (reason: string): number => deferred.filter((point) => point.attributes['sir_webhooks.reason'] === reason && point.attributes['sir_webhooks.handler'] === 'callPartner')
    .reduce((sum, point) => sum + Number(point.value), 0)
  const stats = webhooks.stats().flow.handlers.callPartner?.deferred
  t.ok(counted('paused') >= 4 && counted('rate') > 0, `paused ${counted('paused')}, rate ${counted('rate')}: each of the 4 runs held by the pause counts`)
  t.equal(counted('paused'), stats?.paused)
  t.equal(counted('rate'), stats?.rate)
})
