// The event record on the BullMQ inbox (outcome(), events()): an ordered event's stale
// flag and skipStale's `skipped: 'stale'`, the handlers that finished an event not
// done, and events({ handler }) read from the jobs' attempt logs.
import { randomUUID } from 'node:crypto'
import { Queue } from 'bullmq'
import t from 'tap'
import { bullmqInbox, type BullmqInbox } from '../src/bullmq/inbox.js'
import { jobIdFor } from '../src/bullmq/jobs.js'
import { describeOutcome } from '../src/cli/inbox-format.js'
import { redisForTests } from './helpers/redis.js'
import { delivery, event, receiver, sleep, until } from './inbox-contract/support.js'

const redis = await redisForTests(t)
if (redis.url === undefined) {
  t.plan(0, `BullMQ event record skipped: no Redis (${redis.reason})`)
} else {
  const { connection } = redis
  const byAction = { key: (e: { type: string, data: unknown }) => e.type.startsWith('action.') ? `action:${(e.data as { actionId: string }).actionId}` : undefined }
  const keyed = (id: string, actionId: string, second: number): Record<string, unknown> =>
    ({ id, type: 'action.completed', createdAt: new Date(Date.UTC(2026, 4, 10, 9, 0, second)).toISOString(), data: { actionId } })
  // Past PARK_MS (30 s): a parked job whose wake-up was missed runs at the end of its park. This file
  // is about what the record says; the wake-up's speed is the ordering scenarios' (a CI run under load
  // once waited more than 20 s here: see the closing note of that stop).
  /**
   * Delivers as the platform does: a 503 (the receiver still starting, or Redis slower than
   * acceptTimeoutMs on a loaded machine) is retried. An unanswered delivery's job stays held until a retry, so a single try could leave the test
   * waiting for an event that was never acknowledged.
   */
  const deliver = async (webhooks: { receive: (d: ReturnType<typeof delivery>) => Promise<{ status: number }> }, body: Parameters<typeof delivery>[0]): Promise<void> => {
    // A receiver still starting (its inbox connecting to Redis) answers 503 at once: retried a moment later.
    for (let tries = 1; (await webhooks.receive(delivery(body))).status !== 200; tries++) {
      if (tries === 100) throw new Error('a hundred deliveries in a row, 100 ms apart, were refused')
      await sleep(100)
    }
  }
  const finished = async (inbox: BullmqInbox, id: string): Promise<void> => {
    await until(async () => ['done', 'dead'].includes((await inbox.outcome(id))?.state ?? ''), `${id} to finish`, 45_000)
  }

  t.test('bullmq: skipStale: the stale event is done, skipped "stale" and stale true, in outcome(), events() and inbox show', async (t) => {
    const inbox = bullmqInbox({ connection, queueName: `record-skip-${randomUUID()}` })
    const webhooks = receiver(inbox, { ordering: { ...byAction, skipStale: true } })
    t.teardown(() => webhooks.close())
    const ran: string[] = []
    webhooks.on('action.completed', function ledger (e) { ran.push(e.id) }, { name: 'ledger' })
    const id = `evt_rec_skip_${randomUUID()}`
    await deliver(webhooks, keyed(`${id}_newer`, id, 9))
    await finished(inbox, `${id}_newer`)
    await deliver(webhooks, keyed(`${id}_older`, id, 3))
    await finished(inbox, `${id}_older`)
    t.same(ran, [`${id}_newer`], 'the older one did not run')
    const older = await inbox.outcome(`${id}_older`)
    t.match(older, { state: 'done', skipped: 'stale', stale: true })
    t.match(describeOutcome(older as NonNullable<typeof older>), /^outcome +stale: not run/m)
    const newer = await inbox.outcome(`${id}_newer`)
    t.match(newer, { state: 'done', stale: false })
    t.equal(newer?.skipped, undefined)
    const listed = await inbox.events({ state: 'done' })
    t.same(listed.map(({ id, stale, skipped }) => ({ id, stale, skipped })), [
      { id: `${id}_older`, stale: true, skipped: 'stale' },
      { id: `${id}_newer`, stale: false, skipped: undefined }
    ], 'events() rows carry the same marks')
  })

  t.test('bullmq: a stale event that ran says stale in its record, not skipped; an unordered event has no stale', async (t) => {
    const inbox = bullmqInbox({ connection, queueName: `record-stale-${randomUUID()}` })
    const webhooks = receiver(inbox, { ordering: byAction })
    t.teardown(() => webhooks.close())
    const told: Array<[string, boolean | undefined]> = []
    webhooks.on(['action.completed', 'transaction.completed'], function ledger (e, { ordering }) { told.push([e.id, ordering?.stale]) }, { name: 'ledger' })
    const id = `evt_rec_stale_${randomUUID()}`
    await deliver(webhooks, keyed(`${id}_newer`, id, 9))
    await finished(inbox, `${id}_newer`)
    await deliver(webhooks, keyed(`${id}_older`, id, 3))
    await deliver(webhooks, event(`${id}_unordered`, 'transaction.completed'))
    await finished(inbox, `${id}_older`)
    await finished(inbox, `${id}_unordered`)
    t.same(told.map(([eventId, stale]) => [eventId.slice(id.length), stale]).sort(), [['_newer', false], ['_older', true], ['_unordered', undefined]])
    const older = await inbox.outcome(`${id}_older`)
    t.match(older, { state: 'done', stale: true })
    t.equal(older?.skipped, undefined, 'it ran: not skipped')
    t.equal((await inbox.outcome(`${id}_newer`))?.stale, false)
    const unordered = await inbox.outcome(`${id}_unordered`)
    t.notOk(unordered !== undefined && 'stale' in unordered, 'no stale for an event without a key')
  })

  t.test('bullmq: a pending or dead event lists the handlers that finished it; events({ handler }) finds what a handler failed on', async (t) => {
    const queueName = `record-handled-${randomUUID()}`
    const inbox = bullmqInbox({ connection, queueName })
    // Two attempts a minute apart: after the first, the retried event waits, pending.
    const webhooks = receiver(inbox, { retry: { attempts: 2, minDelayMs: 60_000, maxDelayMs: 60_000 } })
    const queue = new Queue(queueName, { connection })
    t.teardown(async () => { await webhooks.close(); await queue.close() })
    webhooks.on('action.completed', async function audit () {}, { name: 'audit' })
    webhooks.on('action.completed', async function credit (e) { if (!e.id.endsWith('_fine')) throw new Error('partner said no') }, { name: 'credit' })
    webhooks.on('transaction.completed', async function ledger () { throw new Error('ledger down') }, { name: 'ledger' })
    const id = `evt_rec_handled_${randomUUID()}`
    const retried = `${id}_retried`
    const other = `${id}_other`
    await deliver(webhooks, event(retried))
    await deliver(webhooks, event(`${id}_fine`))
    await deliver(webhooks, event(other, 'transaction.completed'))
    await until(async () => (await inbox.outcome(retried))?.lastError !== undefined && (await inbox.outcome(other))?.lastError !== undefined, 'the first attempts to fail', 20_000)
    await finished(inbox, `${id}_fine`)
    t.match(await inbox.outcome(retried), { state: 'pending', handled: ['audit'] }, 'pending: audit finished, credit did not')
    t.match(await inbox.outcome(other), { state: 'pending', handled: [] }, 'pending: nothing finished')
    t.same((await inbox.events({ handler: 'credit' })).map(({ id }) => id), [retried], 'the events credit failed on')
    t.same((await inbox.events({ handler: 'ledger' })).map(({ id }) => id), [other])
    t.same(await inbox.events({ handler: 'audit' }), [], 'audit failed on nothing')
    t.same(await inbox.events({ handler: 'credit', state: 'done' }), [], 'with the other filters')
    await t.rejects(inbox.events({ handler: 42 as never }), { message: /"handler" must be/ })
    // The retry, now: it fails too, and the job is dead with audit still finished (not run again).
    await (await queue.getJob(jobIdFor(retried)))?.promote()
    await finished(inbox, retried)
    t.match(await inbox.outcome(retried), { state: 'dead', handled: ['audit'] })
    t.same((await inbox.events({ handler: 'credit', state: 'dead' })).map(({ id, handled }) => ({ id, handled })), [{ id: retried, handled: ['audit'] }])
  })
}
