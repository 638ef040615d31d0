import { test } from 'tap'
import { Webhooks, type Delivery, type InboxHealth } from '../src/index.js'
import { MemoryInbox } from '../src/core/memory-inbox.js'
import type { Inbox, InboxRuntime } from '../src/core/inbox.js'
import { captureLogs } from './helpers/logs.js'
import { SECRET, actionCompleted, gate, signedRequest } from './helpers/deliveries.js'

function delivery (): Delivery {
  const request = signedRequest(actionCompleted())
  return { contentType: 'application/json', signature: request.headers['x-sir-signature'], timestamp: request.headers['x-sir-timestamp'], rawBody: request.body }
}

test('health(): ok, degraded once the queue reaches degradedQueueSize, ok again when it drains, closing after close()', async (t) => {
  const webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger, concurrency: 1, degradedQueueSize: 2 })
  const held = gate()
  webhooks.on('action.completed', async () => { await held.promise })
  t.same(webhooks.health(), { status: 'ok', reasons: [] })
  await webhooks.receive(delivery())
  t.equal(webhooks.health().status, 'ok', 'one event, below the threshold')
  await webhooks.receive(delivery())
  t.same(webhooks.health(), { status: 'degraded', reasons: ['the queue holds 2 events accepted and not finished, at or above degradedQueueSize (2)'] })
  held.open()
  const closed = webhooks.close()
  t.same(webhooks.health(), { status: 'closing', reasons: ['the receiver is closing: deliveries are answered 503'] })
  await closed
})

test('degradedQueueSize: 80% of maxQueueSize by default, checked like every option', async (t) => {
  t.equal(new Webhooks({ secret: SECRET, maxQueueSize: 100 }).options.degradedQueueSize, 80)
  t.throws(() => new Webhooks({ secret: SECRET, degradedQueueSize: 0 }), /"degradedQueueSize" must be a positive integer, got 0/)
})

/** The memory inbox with a store health of its own, and a start that waits for `started` and may fail. */
class ReportingInbox implements Inbox {
  readonly inner = new MemoryInbox()
  readonly started = gate()
  own: InboxHealth = { status: 'ok', reasons: [] }
  failStart = false
  constructor (readonly slowStart = false) {}

  start (runtime: InboxRuntime): void | Promise<void> {
    if (!this.slowStart) return this.inner.start(runtime)
    return this.started.promise.then(() => {
      if (this.failStart) throw new Error('the store is down')
      this.inner.start(runtime)
    })
  }

  accept (...args: Parameters<Inbox['accept']>): ReturnType<Inbox['accept']> {
    return this.inner.accept(...args)
  }

  async close (graceMs: number): Promise<void> {
    await this.inner.close(graceMs)
  }

  health (): InboxHealth {
    if (this.own.reasons.includes('throw')) throw new Error('the health query failed')
    return this.own
  }
}

test("health(): the inbox's own report, its start and a health check that throws", async (t) => {
  const inbox = new ReportingInbox()
  const webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger, inbox })
  t.teardown(() => webhooks.close())
  inbox.own = { status: 'degraded', reasons: ['the SQLite file could not be written: SQLITE_FULL'] }
  t.same(webhooks.health(), { status: 'degraded', reasons: ['the SQLite file could not be written: SQLITE_FULL'] })
  inbox.own = { status: 'degraded', reasons: ['throw'] }
  t.same(webhooks.health(), { status: 'degraded', reasons: ["the inbox's health check threw: the health query failed"] })

  const starting = new ReportingInbox(true)
  const slow = new Webhooks({ secret: SECRET, logger: captureLogs().logger, inbox: starting })
  t.same(slow.health(), { status: 'degraded', reasons: ['the inbox is starting: deliveries wait for it'] })
  starting.started.open()
  await slow.receive(delivery())
  t.same(slow.health(), { status: 'ok', reasons: [] })
  await slow.close()

  const failing = new ReportingInbox(true)
  failing.failStart = true
  const broken = new Webhooks({ secret: SECRET, logger: captureLogs().logger, inbox: failing })
  failing.started.open()
  t.equal((await broken.receive(delivery())).code, 'INBOX_UNAVAILABLE')
  t.same(broken.health(), { status: 'degraded', reasons: ['the inbox failed to start: deliveries are answered 503'] })
  await broken.close()
})
