import { test } from 'tap'
import { metrics, trace } from '@opentelemetry/api'
import { adapters } from './conformance/adapters.js'
import { scenarioLogs, scenarios } from './conformance/scenarios.js'
import { signaturesMade, signingSecrets } from './helpers/deliveries.js'
import { otelForTests } from './helpers/otel.js'

// The conformance suite, every scenario on every adapter, with an OpenTelemetry
// SDK registered globally (each scenario's receiver picks it up), logs at debug.
// Then everything emitted is scanned: no secret, no signature, in any form.
test('no secret or signature in any log line, metric or span of the conformance suite', async (t) => {
  const otel = otelForTests()
  metrics.setGlobalMeterProvider(otel.meterProvider)
  trace.setGlobalTracerProvider(otel.tracerProvider)
  t.teardown(async () => {
    metrics.disable()
    trace.disable()
    await otel.shutdown()
  })
  for (const adapter of adapters) {
    await t.test(adapter.name, async (t) => {
      for (const [name, scenario] of Object.entries(scenarios)) await t.test(name, (child) => scenario(child, adapter))
    })
  }

  const logs = scenarioLogs.map((captured) => captured.text()).join('')
  const spans = otel.spans().map((span) => JSON.stringify({
    name: span.name,
    attributes: span.attributes,
    events: span.events,
    links: span.links,
    status: span.status
  })).join('\n')
  const metricData = JSON.stringify(await otel.allMetrics())
  t.ok(logs.length > 10_000 && logs.includes('"reason":"SIGNATURE_MISMATCH"'), `the logs were captured (${logs.length} characters)`)
  t.ok(otel.spans().some((span) => span.name === 'sir_webhooks receive') && otel.spans().some((span) => span.name === 'sir_webhooks handle'), `spans were captured (${otel.spans().length})`)
  t.ok(metricData.includes('sir_webhooks.deliveries') && metricData.includes('SIGNATURE_MISMATCH'), 'metrics were captured')
  t.ok(signingSecrets.size >= 4 && signaturesMade.size > 50, `the suite signed with ${signingSecrets.size} secrets, ${signaturesMade.size} signatures`)

  const needles = [
    ...[...signingSecrets].flatMap((secret) => [secret, secret.replace(/^whsec_/, '')]),
    ...[...signaturesMade].flatMap((signature) => [signature, signature.replace(/^sha256=/, '')])
  ]
  for (const [what, text] of [['logs', logs], ['spans', spans], ['metrics', metricData]] as const) {
    const found = needles.filter((needle) => text.includes(needle))
    t.same(found, [], `nothing secret in the ${what}`)
  }
})
