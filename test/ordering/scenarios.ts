// Ordering's fixed scenarios, on every inbox with an ordering store (memory now):
// a hot key, a failing event keeping its key, a blocked key beside 100 others,
// onDeadLetter block and skip, the reorder window, skipStale.
import type { Test } from 'tap'
import type { DeadLetter, HandlerContext, Inbox, OrderingOptions, Webhooks, WebhooksOptions } from '../../src/index.js'
import { delivery, receiver, sleep, until } from '../inbox-contract/support.js'

export interface OrderingScenarioPlace {
  name: string
  inbox: () => Inbox
  /** Resolves once the receiver's work is done; `webhooks.idle()` unless the inbox has none (BullMQ: its queue drained). */
  settled?: (webhooks: Webhooks) => Promise<void>
  /** A durable inbox keeps unfinished events in its store at close() instead of dead-lettering them. */
  durable?: boolean
}

let counter = 0
function prefix (name: string): string {
  counter += 1
  return `evt_ord_${name}_${process.pid}_${counter}`
}

/** An event of `key` created `second` seconds after a fixed instant. */
function keyed (id: string, key: string, second: number): Record<string, unknown> {
  return { id, type: 'action.completed', createdAt: new Date(Date.UTC(2026, 4, 10, 9, 0, second)).toISOString(), data: { actionId: key } }
}

const byAction: OrderingOptions = { key: (event) => `action:${(event.data as { actionId: string }).actionId}` }

function ordered (place: OrderingScenarioPlace, options: Partial<WebhooksOptions> = {}): ReturnType<typeof receiver> {
  return receiver(place.inbox(), { concurrency: 10, retry: { attempts: 3, minDelayMs: 5, maxDelayMs: 20 }, ordering: byAction, ...options })
}

export function runOrderingScenarios (t: Test, place: OrderingScenarioPlace): void {
  const settled = async (webhooks: Webhooks): Promise<void> => { await (place.settled === undefined ? webhooks.idle() : place.settled(webhooks)) }
  t.test(`${place.name}: a hot key runs strictly one at a time, the waiting ones oldest createdAt first, the older-than-handled ones flagged stale`, async (t) => {
    const webhooks = ordered(place)
    t.teardown(() => webhooks.close())
    const id = prefix('hot')
    let active = 0
    let most = 0
    let release: () => void = () => {}
    const first = new Promise<void>((resolve) => { release = resolve })
    const ran: Array<{ second: number, stale: boolean | undefined }> = []
    webhooks.on('action.completed', async function ledger (event, { ordering }) {
      active += 1
      most = Math.max(most, active)
      ran.push({ second: new Date(event.createdAt).getUTCSeconds(), stale: ordering?.stale })
      if (ran.length === 1) await first
      else await sleep(2)
      active -= 1
    }, { name: 'ledger' })
    t.equal((await webhooks.receive(delivery(keyed(`${id}_first`, 'hot', 20)))).status, 200)
    await until(() => ran.length === 1, 'the first event to start')
    // 29 more, created in scrambled order around the first, all waiting behind it.
    const seconds = Array.from({ length: 29 }, (_, index) => (index * 17) % 40).filter((second) => second !== 20)
    for (const [index, second] of seconds.entries()) t.equal((await webhooks.receive(delivery(keyed(`${id}_${index}`, 'hot', second)))).status, 200)
    // A shared store's counts are a copy it refreshes (store.ts, counts()): given a moment to catch up.
    await until(() => webhooks.stats().ordering?.waitingKeys === 1, 'stats() to count the key as waiting').catch(() => {})
    t.equal(webhooks.stats().ordering?.waitingKeys, 1, 'stats() counts the key as waiting')
    release()
    await settled(webhooks)
    t.equal(most, 1, 'never two runs of the key at once, with the receiver concurrency at 10')
    const after = ran.slice(1)
    t.same(after.map((run) => run.second), [...after.map((run) => run.second)].sort((a, b) => a - b), 'the waiting events ran oldest createdAt first')
    t.same(after.filter((run) => run.stale === true).map((run) => run.second), after.map((run) => run.second).filter((second) => second < 20), 'exactly those older than the one handled first are stale')
    t.equal(webhooks.stats().ordering?.stale, after.filter((run) => run.second < 20).length, 'stats() counts the stale runs')
  })

  t.test(`${place.name}: a failing event keeps its key while retried; the newer event of its key waits behind it`, async (t) => {
    const webhooks = ordered(place)
    t.teardown(() => webhooks.close())
    const id = prefix('retry')
    const order: string[] = []
    let failures = 0
    let release: () => void = () => {}
    const newerAccepted = new Promise<void>((resolve) => { release = resolve })
    webhooks.on('action.completed', async function ledger (event, { attempt }) {
      order.push(`${event.id.slice(-5)}#${attempt}`)
      if (event.id.endsWith('older') && failures < 2) {
        // The first attempt fails only once the newer event waits: it could take the key between the retries.
        if (attempt === 1) await newerAccepted
        failures += 1
        throw new Error('downstream said no')
      }
    }, { name: 'ledger' })
    await webhooks.receive(delivery(keyed(`${id}_older`, 'k', 1)))
    await until(() => order.length === 1, 'the first attempt')
    await webhooks.receive(delivery(keyed(`${id}_newer`, 'k', 2)))
    release()
    await settled(webhooks)
    t.same(order, ['older#1', 'older#2', 'older#3', 'newer#1'], 'the newer event ran after the older one succeeded, not between its retries')
  })

  t.test(`${place.name}: a blocked key does not slow 100 other keys`, async (t) => {
    const run = async (withBlocked: boolean): Promise<number> => {
      const webhooks = ordered(place, { concurrency: 4, ordering: { ...byAction, onDeadLetter: 'block' }, retry: { attempts: 2, minDelayMs: 1, maxDelayMs: 2 } })
      t.teardown(() => webhooks.close())
      const id = prefix(withBlocked ? 'blocked' : 'free')
      webhooks.on('action.completed', async function ledger (event) {
        if ((event.data as { actionId: string }).actionId === 'stuck') throw new Error('always fails')
        await sleep(3)
      }, { name: 'ledger' })
      if (withBlocked) {
        for (let index = 0; index < 50; index += 1) await webhooks.receive(delivery(keyed(`${id}_stuck_${index}`, 'stuck', index)))
        await until(() => webhooks.stats().ordering?.blockedKeys === 1, 'the stuck key to block')
      }
      let done = 0
      webhooks.on('action.completed', function count (event) { if ((event.data as { actionId: string }).actionId !== 'stuck') done += 1 }, { name: 'count' })
      const started = Date.now()
      for (let key = 0; key < 100; key += 1) {
        for (let index = 0; index < 3; index += 1) await webhooks.receive(delivery(keyed(`${id}_${key}_${index}`, `k${key}`, index)))
      }
      await until(() => done === 300, 'the 100 other keys to finish', 60_000)
      const elapsed = Date.now() - started
      if (withBlocked) {
        await until(() => webhooks.stats().ordering?.waitingKeys === 1, 'the count of waiting keys to catch up').catch(() => {})
        t.equal(webhooks.stats().ordering?.waitingKeys, 1, 'the 49 events of the blocked key still wait')
      }
      return elapsed
    }
    const free = await run(false)
    const withBlocked = await run(true)
    // Blocked events holding slots would take the 4 slots for good: the others would never finish.
    t.ok(withBlocked <= free * 3 + 1_000, `300 events over 100 keys took ${withBlocked} ms beside a blocked key, ${free} ms without`)
  })

  t.test(`${place.name}: onDeadLetter "block" holds the key until unblock(key); the dead letter and health() say so`, async (t) => {
    const webhooks = ordered(place, { ordering: { ...byAction, onDeadLetter: 'block' }, retry: { attempts: 2, minDelayMs: 1, maxDelayMs: 2 } })
    t.teardown(() => webhooks.close())
    const id = prefix('block')
    const ran: string[] = []
    const letters: DeadLetter[] = []
    webhooks.onDeadLetter((letter) => { letters.push(letter) })
    webhooks.on('action.completed', async function ledger (event) {
      ran.push(event.id)
      if (event.id.endsWith('bad')) throw new Error('bad event')
    }, { name: 'ledger' })
    await webhooks.receive(delivery(keyed(`${id}_bad`, 'k', 1)))
    await webhooks.receive(delivery(keyed(`${id}_next`, 'k', 2)))
    await until(() => letters.length === 1, 'the dead letter')
    await sleep(100)
    t.notOk(ran.includes(`${id}_next`), 'the next event of the key waits')
    t.same(letters[0]?.ordering, { key: 'action:k', keyAction: 'blocked' }, 'the dead letter says its key is blocked')
    t.match(await webhooks.ordering.blocked(), [{ key: 'action:k', eventId: `${id}_bad`, since: Date }], 'blocked() names the key and the event holding it')
    t.equal(webhooks.health().status, 'paused')
    t.match(webhooks.health().reasons, [/1 ordering key is blocked/])
    t.equal(webhooks.stats().ordering?.blockedKeys, 1)
    t.equal(await webhooks.ordering.unblock('action:k'), true)
    await settled(webhooks)
    t.ok(ran.includes(`${id}_next`), 'unblock moved the key on')
    t.equal(await webhooks.ordering.unblock('action:k'), false, 'a key not blocked: false')
    t.equal(webhooks.health().status, 'ok')
  })

  t.test(`${place.name}: onDeadLetter "skip" (the default) moves the key on and the dead letter records it`, async (t) => {
    const webhooks = ordered(place, { retry: { attempts: 2, minDelayMs: 1, maxDelayMs: 2 } })
    t.teardown(() => webhooks.close())
    const id = prefix('skip')
    const told: Array<HandlerContext['ordering']> = []
    const letters: DeadLetter[] = []
    webhooks.onDeadLetter((letter) => { letters.push(letter) })
    webhooks.on('action.completed', async function ledger (event, { ordering }) {
      if (event.id.endsWith('bad')) throw new Error('bad event')
      told.push(ordering)
    }, { name: 'ledger' })
    await webhooks.receive(delivery(keyed(`${id}_bad`, 'k', 5)))
    await webhooks.receive(delivery(keyed(`${id}_next`, 'k', 1)))
    await settled(webhooks)
    t.same(letters.map((letter) => letter.ordering), [{ key: 'action:k', keyAction: 'skipped' }])
    t.same(told, [{ key: 'action:k', stale: false, newestHandledAt: undefined }], 'the next ran; a dead event is not a handled one, so it is not stale')
    t.equal(webhooks.stats().ordering?.skippedDeadLetters, 1)
    t.same(await webhooks.ordering.blocked(), [])
  })

  t.test(`${place.name}: holdMs lets an older event delivered late overtake a newer one, and the 2xx is not held`, async (t) => {
    const play = async (holdMs: number): Promise<Array<{ id: string, stale: boolean | undefined }>> => {
      const webhooks = ordered(place, { ordering: { ...byAction, holdMs } })
      t.teardown(() => webhooks.close())
      const id = prefix(`hold${holdMs}`)
      const ran: Array<{ id: string, stale: boolean | undefined }> = []
      webhooks.on('action.completed', function ledger (event, { ordering }) { ran.push({ id: event.id.slice(-5), stale: ordering?.stale }) }, { name: 'ledger' })
      // A first delivery on another key, untimed: a receiver's first accept also
      // opens its store (under CI load, past any tight bound).
      t.equal((await webhooks.receive(delivery(keyed(`${id}_first`, 'w', 1)))).status, 200)
      const started = Date.now()
      t.equal((await webhooks.receive(delivery(keyed(`${id}_newer`, 'k', 9)))).status, 200)
      // Well under the 2 s hold: the 2xx does not wait for it.
      t.ok(Date.now() - started < 1_000, 'answered at once, whatever the hold')
      await sleep(60)
      await webhooks.receive(delivery(keyed(`${id}_older`, 'k', 3)))
      await settled(webhooks)
      return ran.filter((run) => run.id !== 'first')
    }
    t.same(await play(0), [{ id: 'newer', stale: false }, { id: 'older', stale: true }], 'without a hold the late older event comes second, stale')
    t.same(await play(2_000), [{ id: 'older', stale: false }, { id: 'newer', stale: false }], 'with holdMs it overtakes, and nothing is stale')
  })

  t.test(`${place.name}: skipStale does not run a stale event; it is done, counted as stale`, async (t) => {
    const webhooks = ordered(place, { ordering: { ...byAction, skipStale: true } })
    t.teardown(() => webhooks.close())
    const id = prefix('skipstale')
    const ran: string[] = []
    webhooks.on('action.completed', function ledger (event) { ran.push(event.id.slice(-5)) }, { name: 'ledger' })
    webhooks.on('action.completed', function audit (event) { ran.push(`audit:${event.id.slice(-5)}`) }, { name: 'audit' })
    await webhooks.receive(delivery(keyed(`${id}_newer`, 'k', 9)))
    await settled(webhooks)
    await webhooks.receive(delivery(keyed(`${id}_older`, 'k', 3)))
    await webhooks.receive(delivery(keyed(`${id}_later`, 'k', 12)))
    await settled(webhooks)
    t.same(ran, ['newer', 'audit:newer', 'later', 'audit:later'], 'no handler ran the stale event; the key moved on')
    await until(() => webhooks.stats().ordering?.waitingKeys === 0, 'the count of waiting keys to catch up').catch(() => {})
    t.match(webhooks.stats().ordering, { skippedStale: 1, stale: 0, waitingKeys: 0 })
    // A shared store's queue counts are a copy it refreshes too.
    await until(() => webhooks.stats().queue.waiting === 0, 'the count of waiting events to catch up').catch(() => {})
    t.equal(webhooks.stats().queue.waiting, 0)
  })

  // On the durable inboxes: the memory inbox keeps no finished events to replay.
  if (place.durable === true) t.test(`${place.name}: a replay by filter of done events runs them again through their key: one at a time, the waiting ones oldest createdAt first`, async (t) => {
    const webhooks = ordered(place)
    t.teardown(() => webhooks.close())
    const inbox = webhooks.inbox
    const id = prefix('replay')
    const since = new Date()
    let replaying = false
    let active = 0
    let most = 0
    let release: () => void = () => {}
    const firstReplayed = new Promise<void>((resolve) => { release = resolve })
    const replayed: number[] = []
    webhooks.on('action.completed', async function ledger (event) {
      if (!replaying) return
      active += 1
      most = Math.max(most, active)
      replayed.push(new Date(event.createdAt).getUTCSeconds())
      // The first replayed run holds its key until every other one is queued behind it.
      if (replayed.length === 1) await firstReplayed
      else await sleep(2)
      active -= 1
    }, { name: 'ledger' })
    const seconds = [7, 3, 11, 1, 9, 5, 13, 2]
    for (const [index, second] of seconds.entries()) t.equal((await webhooks.receive(delivery(keyed(`${id}_${index}`, 'replayed', second)))).status, 200)
    await settled(webhooks)
    for (const index of seconds.keys()) await until(async () => (await inbox.outcome?.(`${id}_${index}`))?.state === 'done', 'every event done')
    replaying = true
    t.equal(await inbox.requeue?.({ state: 'done', type: 'action.completed', since }), seconds.length, 'every done event of the key queued again')
    await until(() => replayed.length >= 1, 'the first replayed run to start')
    // The others are queued now; give the workers time to take them (and, on
    // BullMQ, put each in its key's line on its first take), were the key not kept.
    await sleep(1_500)
    t.equal(replayed.length, 1, 'the rest wait behind the replayed run that holds the key')
    release()
    await until(() => replayed.length === seconds.length, 'every replayed run', 20_000)
    await settled(webhooks)
    t.equal(most, 1, 'never two runs of the key at once, with the receiver concurrency at 10')
    const after = replayed.slice(1)
    t.same(after, [...after].sort((a, b) => a - b), 'the waiting replayed events ran oldest createdAt first')
  })

  t.test(`${place.name}: close() dead-letters the events still waiting for their key${place.durable === true ? ' (durable: keeps them)' : ''}`, async (t) => {
    const webhooks = ordered(place, { closeGraceMs: 50 })
    const id = prefix('close')
    const letters: DeadLetter[] = []
    webhooks.onDeadLetter((letter) => { letters.push(letter) })
    let started = 0
    webhooks.on('action.completed', async function ledger (_event, { signal }) {
      started += 1
      await new Promise((resolve) => { signal.addEventListener('abort', resolve) })
    }, { name: 'ledger' })
    for (let index = 0; index < 3; index += 1) await webhooks.receive(delivery(keyed(`${id}_${index}`, 'k', index)))
    await until(() => started === 1, 'the first event to start')
    await webhooks.close()
    if (place.durable === true) {
      t.same(letters, [], 'a durable inbox dead-letters nothing at close(): the events stay in its store for the next start')
      return
    }
    t.same(letters.map((letter) => [letter.reason, letter.event.id, letter.attempts]).sort(), [
      ['shutdown', `${id}_0`, 1], ['shutdown', `${id}_1`, 0], ['shutdown', `${id}_2`, 0]
    ], 'the running one and the two waiting ones, none lost')
  })
}
