import t from 'tap'
import { createDelivery, createEvent } from '../../src/testing/index.js'
import { ensureBuilt, runCli, startListen } from './helpers.js'

ensureBuilt()

const secret = 'whsec_bGlzdGVuLXNlY3JldA'

t.test('listen prints each verified event, pretty, and each refusal with its reason', async (t) => {
  const listener = await startListen(['--secret', secret])
  t.teardown(() => listener.stop())
  t.match(listener.url, /^http:\/\/127\.0\.0\.1:\d+\/webhooks\/sir$/)
  t.notOk(listener.lines.some((line) => line.includes(secret)), 'a given secret is never printed')

  const event = createEvent('action.completed', { tokensDistributed: 42 })
  const sent = await runCli(['send', '--url', listener.url, '--secret', secret, '--type', 'action.completed', '--id', event.id, '--data', '{"tokensDistributed":42}'])
  t.equal(sent.code, 0)
  await listener.waitFor((line) => line.startsWith(`✓ action.completed  ${event.id}`))
  await listener.waitFor((line) => line.includes('"tokensDistributed": 42'))

  const duplicate = await runCli(['send', '--url', listener.url, '--secret', secret, '--type', 'action.completed', '--id', event.id])
  t.equal(duplicate.code, 0, 'a duplicate is still a 200')
  await listener.waitFor((line) => line.startsWith(`= 200 duplicate action.completed  ${event.id}`))

  const forged = createDelivery(createEvent('campaign.paused'), { secret: 'whsec_someone-else' })
  const refused = await fetch(listener.url, { method: 'POST', headers: forged.headers, body: forged.body })
  t.equal(refused.status, 401)
  await listener.waitFor((line) => line.startsWith('✗ 401 SIGNATURE_MISMATCH'))

  const withNewline = createDelivery(createEvent('campaign.paused'), { secret })
  await fetch(listener.url, { method: 'POST', headers: withNewline.headers, body: withNewline.body + '\n' })
  await listener.waitFor((line) => line.includes('likely TRAILING_NEWLINE'))

  const old = createDelivery(createEvent('campaign.paused'), { secret, timestamp: Math.floor(Date.now() / 1000) - 600 })
  await fetch(listener.url, { method: 'POST', headers: old.headers, body: old.body })
  await listener.waitFor((line) => line.startsWith('✗ 401 TIMESTAMP_OUT_OF_RANGE'))
  await listener.waitFor((line) => line.includes('likely CLOCK_SKEW') && /Clock skew of 60\d seconds/.test(line))

  const text = createDelivery(createEvent('campaign.paused'), { secret })
  await fetch(listener.url, { method: 'POST', headers: { ...text.headers, 'Content-Type': 'text/plain' }, body: text.body })
  await listener.waitFor((line) => line.startsWith('✗ 415 UNSUPPORTED_MEDIA_TYPE'))

  await fetch(listener.url.replace('/webhooks/sir', '/wrong'), { method: 'POST', headers: text.headers, body: text.body })
  await listener.waitFor((line) => line.startsWith('✗ 404 POST /wrong: no webhook route here'))

  const output = listener.lines.join('\n')
  for (const delivery of [forged, withNewline, old, text]) {
    t.notMatch(output, delivery.headers['X-SIR-Signature'].slice('sha256='.length), 'no signature is printed')
  }
  t.equal(await listener.stop(), 0, 'SIGTERM stops it with exit 0')
})

t.test('listen generates and prints a secret when none is given, and it works', async (t) => {
  const listener = await startListen()
  t.teardown(() => listener.stop())
  const line = await listener.waitFor((text) => text.startsWith('secret: '))
  const generated = line.split(' ')[1] ?? ''
  t.match(generated, /^whsec_[A-Za-z0-9_-]{20,}$/)
  const sent = await runCli(['send', '--url', listener.url, '--type', 'token_pool.refilled'], { env: { SIR_WEBHOOK_SECRET: generated } })
  t.equal(sent.code, 0)
  await listener.waitFor((text) => text.startsWith('✓ token_pool.refilled'))
})

t.test('listen honours --path, and exits 1 when the port is taken', async (t) => {
  const listener = await startListen(['--secret', secret, '--path', '/hooks'])
  t.teardown(() => listener.stop())
  t.match(listener.url, /\/hooks$/)
  const port = new URL(listener.url).port
  const second = await runCli(['listen', '--port', port, '--secret', secret])
  t.equal(second.code, 1)
  t.match(second.stderr, /cannot listen on 127\.0\.0\.1:\d+ \(EADDRINUSE\)/)
})

t.test('listen prints a sender\'s control characters escaped, never raw', async (t) => {
  const listener = await startListen(['--secret', secret])
  t.teardown(() => listener.stop())
  let raw = ''
  listener.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => { raw += chunk })
  // A signed event (the sender holds the secret, or a test tool does) whose type
  // clears the screen, whose id carries a C1 CSI and DEL, and whose data a BEL and an OSC.
  const body = JSON.stringify({
    id: 'evt_\u009b31m\u007f',
    type: 'evil\u001b[2J\u001b[H\u001b[32mALL GOOD',
    createdAt: '2026-11-30T06:21:25Z\u001b[1A',
    data: { note: 'ring\u0007 \u001b]0;pwned\u0007 \u0085' }
  })
  const delivery = createDelivery(body, { secret })
  const answer = await fetch(listener.url, { method: 'POST', headers: delivery.headers, body: delivery.body })
  t.equal(answer.status, 200)
  const line = await listener.waitFor((text) => text.startsWith('✓ '))
  t.equal(line, '✓ evil\\x1b[2J\\x1b[H\\x1b[32mALL GOOD  evt_\\x9b31m\\x7f  created 2026-11-30T06:21:25Z\\x1b[1A')
  await listener.waitFor((text) => text.includes('"note"'))
  t.match(raw, '"note": "ring\\u0007 \\u001b]0;pwned\\u0007 \\x85"', 'JSON escapes C0 in data, printable() the C1')
  // eslint-disable-next-line no-control-regex
  t.notMatch(raw, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/, 'no control character reached the terminal')

  const again = await fetch(listener.url, { method: 'POST', headers: delivery.headers, body: delivery.body })
  t.equal(again.status, 200)
  await listener.waitFor((text) => text.startsWith('= 200 duplicate '))
  t.match(raw, '= 200 duplicate evil\\x1b[2J\\x1b[H\\x1b[32mALL GOOD  evt_\\x9b31m\\x7f: already seen')
  // eslint-disable-next-line no-control-regex
  t.notMatch(raw, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/)
})
