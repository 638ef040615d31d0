import { once } from 'node:events'
import { connect } from 'node:net'
import type { Test } from 'tap'
import { Webhooks, type DeadLetter, type HandlerContext, type WebhooksOptions } from '../../src/index.js'
import { captureLogs, type CapturedLogs } from '../helpers/logs.js'
import { SECRET, actionCompleted, eventually, freshId, gate, post, signedRequest, type Envelope } from '../helpers/deliveries.js'
import type { AdapterHarness } from './harness.js'

const PATH = '/webhooks/sir'

interface Setup {
  webhooks: Webhooks
  url: string
  logs: CapturedLogs
  send: (body: Envelope | string | Uint8Array, options?: Parameters<typeof signedRequest>[1]) => ReturnType<typeof post>
  /** Sends a request whose headers a test built by hand (to drop or break one). */
  sendRequest: (request: { body: Uint8Array, headers: Record<string, string> }) => ReturnType<typeof post>
}

/** Every log a scenario's receiver wrote, for the test that scans them all for secrets. */
export const scenarioLogs: CapturedLogs[] = []

async function setUp (t: Test, adapter: AdapterHarness, options: Partial<WebhooksOptions> = {}): Promise<Setup> {
  const logs = captureLogs()
  scenarioLogs.push(logs)
  const webhooks = new Webhooks({ secret: SECRET, logger: logs.logger, ...options })
  const running = await adapter.start(webhooks, { path: PATH })
  t.teardown(() => running.close())
  return {
    webhooks,
    url: running.url,
    logs,
    send: (body, requestOptions) => post(running.url, signedRequest(body, requestOptions)),
    sendRequest: (request) => post(running.url, request)
  }
}

type Scenario = (t: Test, adapter: AdapterHarness) => Promise<void>

/**
 * The behaviours every adapter must share, written once. Each names the row of
 * the contract's status table or the dispatch rule it proves.
 */
export const scenarios: Record<string, Scenario> = {
  async 'accepted delivery: 200, handler gets the typed event and a context' (t, adapter) {
    const { webhooks, send } = await setUp(t, adapter)
    const calls: Array<{ event: unknown, context: HandlerContext }> = []
    webhooks.on('action.completed', (event, context) => { calls.push({ event, context }) })
    const event = actionCompleted({ extraField: 'kept' })
    const answer = await send(event)
    t.equal(answer.status, 200)
    t.same(answer.json, { received: true })
    await eventually(() => calls.length === 1, 5000, 'the handler')
    t.same(calls[0]?.event, event, 'the event arrives as sent, unknown fields included')
    t.equal(calls[0]?.context.attempt, 1)
    t.ok(calls[0]?.context.receivedAt instanceof Date)
    t.equal(calls[0]?.context.signal.aborted, false)
    t.type(calls[0]?.context.log.info, 'function')
  },

  async 'the 2xx is sent before the handler finishes (handlers run asynchronously)' (t, adapter) {
    const { webhooks, send } = await setUp(t, adapter)
    const held = gate()
    let started = 0
    let finished = 0
    webhooks.on('action.completed', async () => {
      started += 1
      await held.promise
      finished += 1
    })
    const answer = await send(actionCompleted())
    t.equal(answer.status, 200)
    t.equal(finished, 0, 'the answer did not wait for the handler')
    await eventually(() => started === 1, 5000, 'the handler to start')
    held.open()
    await eventually(() => finished === 1, 5000, 'the handler to finish')
  },

  async '401 for a missing, malformed or wrong signature, and no handler runs' (t, adapter) {
    const { webhooks, send, sendRequest } = await setUp(t, adapter)
    let calls = 0
    webhooks.onAny(() => { calls += 1 })
    const event = actionCompleted()
    const valid = signedRequest(event)
    const cases: Array<[string, Record<string, string>, string]> = [
      ['missing signature', { 'x-sir-signature': '' }, 'MISSING_SIGNATURE'],
      ['no sha256= prefix', { 'x-sir-signature': valid.headers['x-sir-signature']!.slice(7) }, 'MALFORMED_SIGNATURE'],
      ['uppercase hex', { 'x-sir-signature': 'sha256=' + valid.headers['x-sir-signature']!.slice(7).toUpperCase() }, 'MALFORMED_SIGNATURE'],
      ['truncated', { 'x-sir-signature': valid.headers['x-sir-signature']!.slice(0, -2) }, 'MALFORMED_SIGNATURE']
    ]
    for (const [name, headers, code] of cases) {
      const request = { body: valid.body, headers: { ...valid.headers, ...headers } }
      if (headers['x-sir-signature'] === '') delete request.headers['x-sir-signature']
      const result = await sendRequest(request)
      t.equal(result.status, 401, name)
      t.equal((result.json.error as { code?: string } | undefined)?.code, code, name)
    }
    const wrongSecret = await send(event, { secret: 'whsec_someone_else' })
    t.equal(wrongSecret.status, 401)
    t.equal((wrongSecret.json.error as { code: string }).code, 'SIGNATURE_MISMATCH')
    const tampered = signedRequest(event)
    tampered.body = Buffer.from(JSON.stringify({ ...event, data: { actionId: 'act_1', tokensDistributed: 5000 } }))
    t.equal((await sendRequest(tampered)).status, 401, 'a changed body does not verify')
    t.equal(calls, 0)
  },

  async '401 for a missing, malformed or out-of-window timestamp (both directions)' (t, adapter) {
    const now = 1_780_000_000_000
    const { webhooks, send, sendRequest, logs } = await setUp(t, adapter, { clock: () => now })
    let calls = 0
    webhooks.onAny(() => { calls += 1 })
    const nowSeconds = now / 1000
    const at = (timestamp: number | string) => send(actionCompleted(), { timestamp })
    t.equal((await at(nowSeconds - 300)).status, 200, 'exactly 300 s old is inside')
    t.equal((await at(nowSeconds + 300)).status, 200, 'exactly 300 s ahead is inside')
    const late = await at(nowSeconds - 301)
    t.equal(late.status, 401)
    t.equal((late.json.error as { code: string }).code, 'TIMESTAMP_OUT_OF_RANGE')
    t.equal((await at(nowSeconds + 301)).status, 401, 'a timestamp from the future is refused too')
    // Whitespace around a header value is trimmed by HTTP itself; the vectors cover it.
    for (const bad of ['-1780000000', '1780000000.5', '1.78e9', '17800 00000', '0x6A1B']) {
      const answer = await at(bad)
      t.equal(answer.status, 401, `timestamp ${JSON.stringify(bad)}`)
      t.equal((answer.json.error as { code: string }).code, 'INVALID_TIMESTAMP')
    }
    const missing = signedRequest(actionCompleted(), { timestamp: nowSeconds })
    delete missing.headers['x-sir-timestamp']
    const answer = await sendRequest(missing)
    t.equal(answer.status, 401)
    t.equal((answer.json.error as { code: string }).code, 'MISSING_TIMESTAMP')
    t.equal(calls, 2, 'only the two in-window deliveries were dispatched')
    const skew = logs.entries().find((entry) => entry.reason === 'TIMESTAMP_OUT_OF_RANGE')
    t.match(skew, { level: 30, msg: 'webhook rejected', skewSeconds: 301 }, 'the refusal is logged with the clock skew')
  },

  async '400 for a verified body that is not JSON or not an envelope' (t, adapter) {
    const { webhooks, send } = await setUp(t, adapter)
    let calls = 0
    webhooks.onAny(() => { calls += 1 })
    const cases: Array<[string, string, string]> = [
      ['not JSON', '{"id": "evt_1", "type": ', 'INVALID_JSON'],
      ['invalid UTF-8', '\xff', 'INVALID_JSON'],
      ['an array', '[{"id":"evt_1","type":"action.completed"}]', 'INVALID_ENVELOPE'],
      ['no id', '{"type":"action.completed","data":{}}', 'INVALID_ENVELOPE'],
      ['numeric id', '{"id":42,"type":"action.completed","data":{}}', 'INVALID_ENVELOPE'],
      ['no type', '{"id":"evt_1","data":{}}', 'INVALID_ENVELOPE'],
      ['prototype poisoning', '{"id":"evt_1","type":"action.completed","data":{"__proto__":{"isAdmin":true}}}', 'INVALID_JSON']
    ]
    for (const [name, body, code] of cases) {
      const bytes = name === 'invalid UTF-8' ? Buffer.from([0x7b, 0xff, 0x7d]) : Buffer.from(body)
      const answer = await send(bytes)
      t.equal(answer.status, 400, name)
      t.equal((answer.json.error as { code: string }).code, code, name)
    }
    t.equal(calls, 0)
  },

  async '400 EVENT_ID_TOO_LONG for an id over 256 bytes of UTF-8; 256 bytes is fine' (t, adapter) {
    const { webhooks, send, logs } = await setUp(t, adapter)
    const ids: string[] = []
    webhooks.onAny((event) => { ids.push(event.id) })
    const fits = [`evt_${'a'.repeat(252)}`, 'é'.repeat(128), `${'€'.repeat(85)}a`, '\u{1F600}'.repeat(64)]
    for (const id of fits) {
      t.equal(Buffer.byteLength(id), 256)
      t.equal((await send(actionCompleted({ id }))).status, 200, `${id.length} units, 256 bytes`)
    }
    const tooLong = [`evt_${'a'.repeat(253)}`, `${'é'.repeat(128)}a`, '€'.repeat(86), 'x'.repeat(100_000)]
    for (const id of tooLong) {
      const answer = await send(actionCompleted({ id }))
      t.equal(answer.status, 400, `${Buffer.byteLength(id)} bytes`)
      t.same(answer.json, { error: { code: 'EVENT_ID_TOO_LONG', message: 'The event "id" is longer than 256 bytes of UTF-8' } })
    }
    await eventually(() => ids.length === fits.length, 5000, 'the events that fit')
    t.same(ids, fits, 'only the ids that fit were dispatched')
    t.equal(webhooks.stats().deliveries.refusedBy.EVENT_ID_TOO_LONG, tooLong.length)
    const logged = logs.entries().find((entry) => entry.reason === 'EVENT_ID_TOO_LONG')
    t.match(logged, { level: 30, msg: 'webhook rejected' })
    t.notOk(logs.text().includes('a'.repeat(253)), 'the refused id is not logged')
  },

  async '415 for a body that is not application/json, or is content-encoded' (t, adapter) {
    const { webhooks, send } = await setUp(t, adapter)
    let calls = 0
    webhooks.onAny(() => { calls += 1 })
    t.equal((await send(actionCompleted(), { contentType: 'text/plain' })).status, 415, 'text/plain')
    t.equal((await send(actionCompleted(), { contentType: 'application/x-www-form-urlencoded' })).status, 415, 'a form')
    const encoded = await send(actionCompleted(), { headers: { 'content-encoding': 'gzip' } })
    t.equal(encoded.status, 415, 'gzip')
    t.equal((encoded.json.error as { code: string }).code, 'UNSUPPORTED_MEDIA_TYPE')
    t.equal(calls, 0)
    t.equal((await send(actionCompleted(), { contentType: 'application/json; charset=utf-8' })).status, 200, 'a charset parameter is fine')
    t.equal((await send(actionCompleted(), { contentType: 'Application/JSON' })).status, 200, 'media types are case-insensitive')
  },

  async '413 for a body over the limit' (t, adapter) {
    const { webhooks, send } = await setUp(t, adapter, { bodyLimit: 2048 })
    let calls = 0
    webhooks.onAny(() => { calls += 1 })
    const big = actionCompleted({ data: { actionId: 'act_1', tokensDistributed: 1, note: 'x'.repeat(4096) } })
    const answer = await send(big)
    t.equal(answer.status, 413)
    t.equal(calls, 0)
    t.equal((await send(actionCompleted())).status, 200, 'a body under the limit is still fine')
  },

  async 'both sides of the body limit: exactly bodyLimit bytes accepted, one more refused with 413' (t, adapter) {
    const bodyLimit = 2048
    const { webhooks, send } = await setUp(t, adapter, { bodyLimit })
    const ids: string[] = []
    webhooks.onAny((event) => { ids.push(event.id) })
    /** A signed envelope of exactly `bytes` bytes, padded inside data. */
    const ofSize = (bytes: number): { id: string, body: string } => {
      const event = actionCompleted({ data: { actionId: 'act_1', tokensDistributed: 1, note: '' } })
      const body = JSON.stringify({ ...event, data: { actionId: 'act_1', tokensDistributed: 1, note: 'x'.repeat(bytes - JSON.stringify(event).length) } })
      return { id: event.id, body }
    }
    const atLimit = ofSize(bodyLimit)
    t.equal(Buffer.byteLength(atLimit.body), bodyLimit)
    t.equal((await send(atLimit.body)).status, 200, 'exactly bodyLimit bytes is accepted')
    const overLimit = ofSize(bodyLimit + 1)
    t.equal(Buffer.byteLength(overLimit.body), bodyLimit + 1)
    const refused = await send(overLimit.body)
    t.equal(refused.status, 413, 'bodyLimit + 1 bytes is refused')
    t.equal((refused.json.error as { code: string }).code, 'BODY_TOO_LARGE')
    await eventually(() => ids.length === 1, 5000, 'the accepted event')
    t.same(ids, [atLimit.id], 'only the event at the limit ran')
  },

  async '503 with Retry-After when the queue is full; the refused event is processed on retry' (t, adapter) {
    const { webhooks, send } = await setUp(t, adapter, { maxQueueSize: 2, retryAfterSeconds: 7 })
    const held = gate()
    const handled: string[] = []
    webhooks.on('action.completed', async (event) => {
      await held.promise
      handled.push(event.id)
    })
    const [first, second, third] = [actionCompleted(), actionCompleted(), actionCompleted()]
    t.equal((await send(first!)).status, 200)
    t.equal((await send(second!)).status, 200)
    const full = await send(third!)
    t.equal(full.status, 503)
    t.equal(full.headers.get('retry-after'), '7')
    t.equal((full.json.error as { code: string }).code, 'QUEUE_FULL')
    t.equal((await send(first!)).status, 200, 'a duplicate of an accepted event is still acknowledged while full')
    held.open()
    await eventually(() => handled.length === 2, 5000, 'the two accepted events')
    const retried = await send(third!)
    t.equal(retried.status, 200, 'the sender\'s retry of the refused event is accepted')
    t.same(retried.json, { received: true }, 'and it is not treated as a duplicate')
    await eventually(() => handled.length === 3, 5000, 'the retried event')
    t.same(handled.sort(), [first!.id, second!.id, third!.id].sort())
  },

  async 'duplicates are acknowledged and not dispatched again, including concurrent ones' (t, adapter) {
    const { webhooks, send } = await setUp(t, adapter)
    const handled: string[] = []
    webhooks.on('action.completed', (event) => { handled.push(event.id) })
    const event = actionCompleted()
    t.same((await send(event)).json, { received: true })
    const again = await send(event, { timestamp: Math.floor(Date.now() / 1000) - 10 })
    t.equal(again.status, 200, 'a re-signed redelivery of the same id')
    t.same(again.json, { received: true, duplicate: true })

    const burst = actionCompleted()
    const answers = await Promise.all(Array.from({ length: 12 }, () => send(burst)))
    t.same(answers.map((answer) => answer.status), Array(12).fill(200))
    t.equal(answers.filter((answer) => answer.json.duplicate !== true).length, 1, 'exactly one of the concurrent copies was new')
    await eventually(() => handled.length === 2, 5000, 'both events')
    await new Promise((resolve) => setTimeout(resolve, 50))
    t.same(handled, [event.id, burst.id], 'each id handled once')
  },

  async 'a failing handler is retried with backoff, then succeeds' (t, adapter) {
    const { webhooks, send } = await setUp(t, adapter, { retry: { attempts: 4, minDelayMs: 1, maxDelayMs: 5 } })
    const attempts: number[] = []
    const errors: unknown[] = []
    webhooks.onError((error) => { errors.push(error) })
    webhooks.on('action.completed', (_event, context) => {
      attempts.push(context.attempt)
      if (context.attempt < 3) throw new Error('payout service busy')
    })
    t.equal((await send(actionCompleted())).status, 200)
    await eventually(() => attempts.length === 3, 5000, 'three attempts')
    await new Promise((resolve) => setTimeout(resolve, 30))
    t.same(attempts, [1, 2, 3])
    t.same(errors, [], 'onError is only for handlers that fail for good')
  },

  async 'a handler that fails for good reaches onError and the dead-letter callback; other handlers and events go on' (t, adapter) {
    const { webhooks, send, logs } = await setUp(t, adapter, { retry: { attempts: 2, minDelayMs: 1, maxDelayMs: 2 } })
    const failures: Array<{ error: unknown, id: string, handler: string, attempts: number }> = []
    const deadLetters: DeadLetter[] = []
    const okCalls: string[] = []
    webhooks.onError((error, event, info) => { failures.push({ error, id: event.id, handler: info.handler, attempts: info.attempts }) })
    webhooks.onDeadLetter((deadLetter) => { deadLetters.push(deadLetter) })
    webhooks.on('action.failed', function creditLedger () { throw new Error('ledger down') })
    webhooks.on('action.failed', (event) => { okCalls.push(`sibling:${event.id}`) })
    webhooks.on('action.completed', (event) => { okCalls.push(`other:${event.id}`) })
    const failing = actionCompleted({ type: 'action.failed', data: {} })
    const other = actionCompleted()
    t.equal((await send(failing)).status, 200)
    t.equal((await send(other)).status, 200)
    await eventually(() => deadLetters.length === 1, 5000, 'the dead letter')
    t.equal(failures.length, 1)
    t.equal(failures[0]?.id, failing.id)
    t.equal(failures[0]?.handler, 'creditLedger')
    t.equal(failures[0]?.attempts, 2)
    t.match(failures[0]?.error, { message: 'ledger down' })
    t.match(deadLetters[0], { reason: 'handler_failed', handler: 'creditLedger', attempts: 2, event: { id: failing.id } })
    t.same(okCalls.sort(), [`other:${other.id}`, `sibling:${failing.id}`].sort())
    const logged = logs.entries().find((entry) => entry.msg === 'event dead-lettered: a handler failed for good')
    t.match(logged, { level: 50, event: { id: failing.id, type: 'action.failed' }, handler: 'creditLedger' })
  },

  async 'handlers run at most `concurrency` at a time' (t, adapter) {
    const { webhooks, send } = await setUp(t, adapter, { concurrency: 2 })
    const held = gate()
    let running = 0
    let peak = 0
    let done = 0
    webhooks.on('action.completed', async () => {
      running += 1
      peak = Math.max(peak, running)
      await held.promise
      running -= 1
      done += 1
    })
    for (let index = 0; index < 5; index++) t.equal((await send(actionCompleted())).status, 200)
    await eventually(() => running === 2, 5000, 'two running handlers')
    await new Promise((resolve) => setTimeout(resolve, 30))
    t.equal(peak, 2)
    held.open()
    await eventually(() => done === 5, 5000, 'all five')
    t.equal(peak, 2)
  },

  async 'on(array), onAny, unknown types and off' (t, adapter) {
    const { webhooks, send } = await setUp(t, adapter)
    const seen: string[] = []
    webhooks.on(['campaign.paused', 'campaign.completed'], (event) => { seen.push(`campaign:${event.type}`) })
    const any = (event: { type: string }): void => { seen.push(`any:${event.type}`) }
    webhooks.onAny(any)
    const removed = (): void => { seen.push('removed') }
    webhooks.on('campaign.paused', removed)
    webhooks.off('campaign.paused', removed)
    for (const type of ['campaign.paused', 'campaign.completed', 'reward.invented_later']) {
      t.equal((await send({ id: freshId(), type, createdAt: new Date().toISOString(), data: { campaignId: 'c1' } })).status, 200, type)
    }
    await eventually(() => seen.length === 5, 5000, 'five handler calls')
    t.same(seen.sort(), ['any:campaign.completed', 'any:campaign.paused', 'any:reward.invented_later', 'campaign:campaign.completed', 'campaign:campaign.paused'])
  },

  async 'close() answers 503 to new deliveries and waits for accepted events' (t, adapter) {
    const { webhooks, send } = await setUp(t, adapter)
    const held = gate()
    const handled: string[] = []
    webhooks.on('action.completed', async (event) => {
      await held.promise
      handled.push(event.id)
    })
    const accepted = actionCompleted()
    t.equal((await send(accepted)).status, 200)
    let closed = false
    const closing = webhooks.close().then(() => { closed = true })
    const refused = await send(actionCompleted())
    t.equal(refused.status, 503)
    t.equal(refused.headers.get('retry-after'), '5', 'with Retry-After: the default retryAfterSeconds')
    t.equal((refused.json.error as { code: string }).code, 'CLOSING')
    await new Promise((resolve) => setTimeout(resolve, 30))
    t.equal(closed, false, 'close waits for the running handler')
    held.open()
    await closing
    t.same(handled, [accepted.id])
  },

  async 'close() dead-letters what is left after the grace period and aborts the signal' (t, adapter) {
    const { webhooks, send, logs } = await setUp(t, adapter, { closeGraceMs: 50 })
    const deadLetters: DeadLetter[] = []
    let signal: AbortSignal | undefined
    webhooks.onDeadLetter((deadLetter) => { deadLetters.push(deadLetter) })
    webhooks.on('action.completed', (_event, context) => {
      signal = context.signal
      return new Promise(() => { /* never settles: a stuck payout call */ })
    })
    const stuck = actionCompleted()
    t.equal((await send(stuck)).status, 200)
    await eventually(() => signal !== undefined, 5000, 'the handler to start')
    await webhooks.close()
    t.equal(deadLetters.length, 1)
    t.match(deadLetters[0], { reason: 'shutdown', event: { id: stuck.id } })
    t.equal(signal?.aborted, true, 'the handler\'s signal fired')
    t.ok(logs.entries().some((entry) => entry.msg === 'event dead-lettered: shutdown came before it finished' && (entry.event as { id?: string }).id === stuck.id), 'the left-over event is logged with its id')
  },

  async 'secret rotation: a delivery signed with an older secret still verifies' (t, adapter) {
    const { webhooks, send } = await setUp(t, adapter, { secret: ['whsec_new', SECRET] })
    let calls = 0
    webhooks.onAny(() => { calls += 1 })
    t.equal((await send(actionCompleted(), { secret: SECRET })).status, 200, 'old secret')
    t.equal((await send(actionCompleted(), { secret: 'whsec_new' })).status, 200, 'new secret')
    t.equal((await send(actionCompleted(), { secret: 'whsec_retired' })).status, 401, 'a secret no longer listed')
    await eventually(() => calls === 2, 5000, 'two handler calls')
  },

  async 'exact bytes: a body with a BOM or odd whitespace verifies as sent' (t, adapter) {
    const { webhooks, send } = await setUp(t, adapter)
    const ids: string[] = []
    webhooks.onAny((event) => { ids.push(event.id) })
    const spaced = `{ "id" : "${freshId()}",\n\t"type":"action.completed", "createdAt" :"2026-05-10T09:12:00Z", "data": {"actionId":"a","tokensDistributed":1} }\n`
    t.equal((await send(spaced)).status, 200, 'whitespace and a trailing newline')
    const bomId = freshId()
    const withBom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify({ id: bomId, type: 'action.completed', createdAt: new Date().toISOString(), data: {} }))])
    t.equal((await send(withBom)).status, 200, 'a UTF-8 byte order mark')
    await eventually(() => ids.length === 2, 5000, 'both events')
    t.ok(ids.includes(bomId))
  },

  async 'routing: only a POST to exactly the webhook path is a delivery (letter case and a trailing slash count, the query does not)' (t, adapter) {
    const { webhooks, url } = await setUp(t, adapter)
    let calls = 0
    webhooks.onAny(() => { calls += 1 })
    const base = url.slice(0, -PATH.length)
    for (const near of [`${PATH}/`, PATH.toUpperCase(), `${PATH}x`, `${PATH}/more`]) {
      t.equal((await post(base + near, signedRequest(actionCompleted()))).status, 404, `POST ${near}`)
    }
    const wrongMethod = await fetch(url, { method: 'PUT', body: '{}', headers: { 'content-type': 'application/json' } })
    t.equal(wrongMethod.status, 404, 'PUT on the path')
    await wrongMethod.body?.cancel()
    t.equal((await post(`${url}?source=sir`, signedRequest(actionCompleted()))).status, 200, 'a query string is not part of the route')
    await eventually(() => calls === 1, 5000, 'the one delivery')
    t.equal(calls, 1, 'no near miss was dispatched')
  },

  async 'routing: the path is compared as sent: a percent-encoded letter or a fragment in the target is not the webhook path' (t, adapter) {
    const { webhooks, url } = await setUp(t, adapter)
    let calls = 0
    webhooks.onAny(() => { calls += 1 })
    const target = new URL(url)
    for (const near of ['/webhooks/%73ir', '/webhooks%2Fsir', '/%77ebhooks/sir', `${PATH}#frag`, `${PATH}?x=1#frag`]) {
      const { body, headers } = signedRequest(actionCompleted())
      t.equal(await rawPost(target, near, body, headers), 404, `POST ${near}`)
    }
    t.equal(calls, 0, 'no near miss was dispatched')
    const { body, headers } = signedRequest(actionCompleted())
    t.equal(await rawPost(target, PATH, body, headers), 200, 'the path itself, as sent')
    await eventually(() => calls === 1, 5000, 'the one delivery')
  },

  async 'routing: dot segments and backslashes in the target: 404 where the adapter sees the target as sent; a fetch Request arrives resolved' (t, adapter) {
    const { webhooks, url } = await setUp(t, adapter)
    let calls = 0
    webhooks.onAny(() => { calls += 1 })
    const target = new URL(url)
    const nearMisses = ['/webhooks/x/../sir', '/webhooks/./sir', '/webhooks/%2e/sir']
    // A backslash is a separator only to the URL standard: how a fetch runtime's
    // server turns one into a Request is the runtime's, so it is asserted where the
    // adapter sees the target as sent.
    if (adapter.targetNormalized !== true) nearMisses.push('/webhooks\\sir')
    const expected = adapter.targetNormalized === true ? 200 : 404
    for (const near of nearMisses) {
      const { body, headers } = signedRequest(actionCompleted())
      t.equal(await rawPost(target, near, body, headers), expected, `POST ${near}`)
    }
    const routed = expected === 200 ? nearMisses.length : 0
    await eventually(() => calls === routed, 5000, 'the deliveries the adapter routed')
    t.equal(calls, routed)
  },

  async '415 for two Content-Type header lines, even when both say application/json' (t, adapter) {
    const { webhooks, url } = await setUp(t, adapter)
    let calls = 0
    webhooks.onAny(() => { calls += 1 })
    const target = new URL(url)
    for (const types of [['application/json', 'application/json'], ['application/json', 'text/plain'], ['text/plain', 'application/json']]) {
      const { body, headers } = signedRequest(actionCompleted(), { contentType: null })
      const lines = [...Object.entries(headers), ...types.map((type): [string, string] => ['content-type', type])]
      const answer = await rawPostLines(target, PATH, body, lines)
      t.equal(answer.status, 415, types.join(' + '))
      t.match(answer.body, /UNSUPPORTED_MEDIA_TYPE/)
    }
    t.equal(calls, 0)
    const { body, headers } = signedRequest(actionCompleted())
    t.equal((await rawPostLines(target, PATH, body, Object.entries(headers))).status, 200, 'one Content-Type line is fine')
  },

  async 'routing: an absolute-form request target (POST http://host/path) is a delivery' (t, adapter) {
    const { webhooks, url } = await setUp(t, adapter)
    let calls = 0
    webhooks.onAny(() => { calls += 1 })
    const { body, headers } = signedRequest(actionCompleted())
    const status = await rawPost(new URL(url), url, body, headers)
    t.equal(status, 200, 'HTTP/1.1 servers must accept the absolute form (RFC 9112, 3.2.2)')
    await eventually(() => calls === 1, 5000, 'the handler')
  }
}

/** One request over a bare socket, with the request target written exactly as given. */
async function rawPost (url: URL, target: string, body: Uint8Array, headers: Record<string, string>): Promise<number> {
  return (await rawPostLines(url, target, body, Object.entries(headers))).status
}

/** `rawPost` with header lines as given, a name more than once included. */
async function rawPostLines (url: URL, target: string, body: Uint8Array, headers: ReadonlyArray<readonly [string, string]>): Promise<{ status: number, body: string }> {
  const socket = connect(Number(url.port), url.hostname)
  const head = [`POST ${target} HTTP/1.1`, `host: ${url.host}`, 'connection: close', `content-length: ${body.byteLength}`, ...headers.map(([name, value]) => `${name}: ${value}`)]
  socket.write(head.join('\r\n') + '\r\n\r\n')
  socket.write(body)
  let text = ''
  socket.setEncoding('latin1').on('data', (chunk: string) => { text += chunk })
  await once(socket, 'close')
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), body: text.slice(text.indexOf('\r\n\r\n') + 4) }
}
