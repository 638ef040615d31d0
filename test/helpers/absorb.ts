// Issue 22, item 1, the same check on every durable inbox: with the defaults, a
// backlog past the memory inbox's bound is taken, not refused.
import type { Test } from 'tap'
import type { Inbox } from '../../src/index.js'
import { delivery, event, receiver } from '../inbox-contract/support.js'

/**
 * With every bound at its default, an accept-only receiver (no handler) takes
 * more than the memory inbox's 10 000 waiting events: each gets 2xx, each waits
 * in the store, and health() stays ok (degradedQueueSize follows maxBacklog).
 */
export async function absorbsPastMemoryBound (t: Test, inbox: Inbox): Promise<void> {
  const webhooks = receiver(inbox, { retry: undefined })
  t.teardown(() => webhooks.close())
  t.equal(webhooks.options.degradedQueueSize, 800_000, '80% of maxBacklog 1 000 000')
  const total = 10_050
  const codes = new Map<string, number>()
  // 200 at a time: a burst's concurrency, without a shared CI box's store running past the accept deadline.
  for (let start = 0; start < total; start += 200) {
    const answers = await Promise.all(Array.from({ length: Math.min(200, total - start) }, async (_, index) => await webhooks.receive(delivery(event(`evt_burst_${start + index}`)))))
    for (const { code } of answers) codes.set(code, (codes.get(code) ?? 0) + 1)
  }
  t.same(Object.fromEntries(codes), { ACCEPTED: total }, 'every delivery got 2xx')
  t.match(await webhooks.inbox.counts?.(), { pending: total, done: 0, dead: 0 }, 'every one waits in the store')
  t.same(webhooks.health(), { status: 'ok', reasons: [] }, 'not degraded past 8 000 on a durable inbox')
}
