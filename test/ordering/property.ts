// The ordering property test, parameterised by an inbox factory so every inbox
// with an ordering store runs the same one (memory now; SQLite, Postgres and
// BullMQ when their stores land). A seeded generator, not fast-check: the cases
// are one shape (a plan of events), shrinking a plan of 60 timed deliveries buys
// little, and the seed replays a failure exactly: ORDERING_SEED=<seed>.
import type { Test } from 'tap'
import type { HandlerContext, Inbox, Webhooks, WebhooksOptions } from '../../src/index.js'
import { seededRandom } from '../../src/testing/random.js'
import { delivery, receiver, sleep } from '../inbox-contract/support.js'

export interface OrderingPlace {
  name: string
  /** A fresh inbox on a fresh store. */
  inbox: () => Inbox
  options?: Partial<WebhooksOptions>
  /** Resolves once the receiver's work is done; `webhooks.idle()` unless the inbox has none (BullMQ: its queue drained). */
  settled?: (webhooks: Webhooks) => Promise<void>
  /**
   * Where a run takes its key before it starts (Postgres: a batch's claim takes
   * every key of the batch, and its later events start after the earlier ones
   * ran), when that was, in ms on this machine's clock: "oldest first" is then
   * checked against the claim rather than the start.
   */
  claimedAt?: (context: HandlerContext) => Promise<number>
}

interface PlannedEvent {
  id: string
  key: string | undefined
  createdAt: number
  /** How many times each handler fails before it succeeds, by handler; `ATTEMPTS`: it never does. */
  failures: [number, number]
  /** How long each run takes, ms. */
  durationMs: number
}

interface Plan {
  /** Slots enough that a run starts in the same step that takes its key: then "oldest first" can be checked exactly. */
  concurrency: number
  events: PlannedEvent[]
  /** Indexes into `events`, in the order they are delivered: permuted, with duplicates. */
  arrivals: number[]
}

/** One handler run as the handler saw it; `start` and `end` are ticks of one counter, so no two are equal. */
interface RunRecord {
  id: string
  handler: 0 | 1
  attempt: number
  start: number
  end: number
  ok: boolean
  ordering: HandlerContext['ordering']
  /** With `place.claimedAt`: when the claim that gave this run its key was made (ms). */
  claimedMs?: number
}

const BASE = Date.parse('2026-05-10T09:00:00Z')
const ATTEMPTS = 4

export function makePlan (random: () => number, prefix: string): Plan {
  const keys = Array.from({ length: 1 + Math.floor(random() * 6) }, (_, index) => `key_${index}`)
  const count = 20 + Math.floor(random() * 40)
  const events: PlannedEvent[] = Array.from({ length: count }, (_, index) => ({
    id: `${prefix}_${index}`,
    // One in ten unordered: they run beside the keys, told nothing.
    key: random() < 0.1 ? undefined : keys[Math.floor(random() * keys.length)],
    // Whole seconds over half a minute: ties of createdAt are common.
    createdAt: BASE + Math.floor(random() * 30) * 1000,
    // One in twenty dead-letters (its first handler fails every attempt): the key moves on (onDeadLetter 'skip').
    failures: [random() < 0.05 ? ATTEMPTS : random() < 0.3 ? 1 + Math.floor(random() * (ATTEMPTS - 1)) : 0, random() < 0.15 ? 1 : 0],
    durationMs: Math.floor(random() * 6)
  }))
  const arrivals = events.map((_, index) => index)
  for (let index = arrivals.length - 1; index > 0; index -= 1) {
    const other = Math.floor(random() * (index + 1))
    ;[arrivals[index], arrivals[other]] = [arrivals[other] as number, arrivals[index] as number]
  }
  // Duplicates, redelivered somewhere after the first delivery.
  for (let index = 0; index < count; index += 1) {
    if (random() >= 0.2) continue
    const first = arrivals.indexOf(index)
    arrivals.splice(first + 1 + Math.floor(random() * (arrivals.length - first)), 0, index)
  }
  return { concurrency: random() < 0.5 ? 4 : 1000, events, arrivals }
}

/** Every handler run, and the tick at which each event's first delivery was answered 2xx ACCEPTED. */
interface Played {
  runs: RunRecord[]
  acceptedAt: Map<string, number>
  /** When each delivery was answered ACCEPTED (ms): its row was committed before. */
  acceptedMs: Map<string, number>
}

/** Plays a plan against a fresh receiver and returns every handler run. */
async function play (place: OrderingPlace, plan: Plan, random: () => number): Promise<Played> {
  const webhooks = receiver(place.inbox(), {
    concurrency: plan.concurrency,
    retry: { attempts: ATTEMPTS, minDelayMs: 1, maxDelayMs: 8 },
    ordering: { key: (event) => (event.data as { orderKey?: string }).orderKey },
    ...place.options
  })
  const runs: RunRecord[] = []
  const byId = new Map(plan.events.map((planned) => [planned.id, planned]))
  const tried = new Map<string, number>()
  const acceptedAt = new Map<string, number>()
  const acceptedMs = new Map<string, number>()
  let tick = 0
  const handler = (which: 0 | 1) => (event: { id: string }, context: HandlerContext): void | Promise<void> => {
    const planned = byId.get(event.id) as PlannedEvent
    const record: RunRecord = { id: event.id, handler: which, attempt: context.attempt, start: ++tick, end: 0, ok: false, ordering: context.ordering }
    runs.push(record)
    const finish = (): void => {
      const triedKey = `${event.id}/${which}`
      const times = (tried.get(triedKey) ?? 0) + 1
      tried.set(triedKey, times)
      record.end = ++tick
      if (times <= planned.failures[which]) throw new Error(`planned failure ${times} of ${event.id}`)
      record.ok = true
    }
    if (place.claimedAt !== undefined) {
      return place.claimedAt(context).then(async (ms) => {
        record.claimedMs = ms
        if (planned.durationMs > 0) await sleep(planned.durationMs)
        finish()
      })
    }
    // A duration of 0 is a synchronous handler, which returns (or throws) within the run itself.
    if (planned.durationMs === 0) return finish()
    return sleep(planned.durationMs).then(finish)
  }
  webhooks.on('action.completed', handler(0), { name: 'ledger' })
  webhooks.on('action.completed', handler(1), { name: 'audit' })
  try {
    const answers: Array<Promise<unknown>> = []
    for (const index of plan.arrivals) {
      const planned = plan.events[index] as PlannedEvent
      const body = { id: planned.id, type: 'action.completed', createdAt: new Date(planned.createdAt).toISOString(), data: { actionId: `act_${planned.id}`, orderKey: planned.key } }
      answers.push(webhooks.receive(delivery(body)).then((answer) => {
        if (answer.code === 'ACCEPTED') {
          acceptedAt.set(planned.id, ++tick)
          acceptedMs.set(planned.id, Date.now())
        }
      }))
      // Bursts and gaps: some deliveries land while their key runs, some together.
      if (random() < 0.3) await sleep(Math.floor(random() * 4))
    }
    await Promise.all(answers)
    await (place.settled === undefined ? webhooks.idle() : place.settled(webhooks))
  } finally {
    await webhooks.close()
  }
  return { runs, acceptedAt, acceptedMs }
}

/** Checks the runs of one plan; each failure message carries the seed that replays it. */
export function checkRuns (t: Test, plan: Plan, { runs, acceptedAt, acceptedMs }: Played, where: string): void {
  const byId = new Map(plan.events.map((planned) => [planned.id, planned]))
  // Nothing lost, nothing handled twice: each handler of each event succeeded once,
  // after exactly its planned failures, or dead-lettered after every attempt; duplicates ran nothing.
  for (const planned of plan.events) {
    for (const which of [0, 1] as const) {
      const mine = runs.filter((run) => run.id === planned.id && run.handler === which)
      const succeeded = mine.filter((run) => run.ok).length
      const dies = planned.failures[which] >= ATTEMPTS
      if (succeeded !== (dies ? 0 : 1) || mine.length !== Math.min(ATTEMPTS, planned.failures[which] + 1)) {
        t.fail(`${where}: ${planned.id} handler ${which} ran ${mine.length} times, succeeded ${succeeded} (planned ${planned.failures[which]} failures first)`)
        return
      }
    }
  }
  // One interval per event, from its first run's start to its last run's end.
  const spans = new Map<string, { start: number, end: number }>()
  for (const run of runs) {
    const span = spans.get(run.id)
    if (span === undefined) spans.set(run.id, { start: run.start, end: run.end })
    else spans.set(run.id, { start: Math.min(span.start, run.start), end: Math.max(span.end, run.end) })
  }
  const keys = new Set(plan.events.map((planned) => planned.key))
  for (const key of keys) {
    const events = plan.events.filter((planned) => planned.key === key)
    if (key === undefined) {
      for (const planned of events) {
        if (runs.some((run) => run.id === planned.id && run.ordering !== undefined)) t.fail(`${where}: unordered ${planned.id} was told an ordering`)
      }
      continue
    }
    const ordered = events.map((planned) => ({ planned, span: spans.get(planned.id) as { start: number, end: number } }))
      .sort((a, b) => a.span.start - b.span.start)
    let newestDone: number | undefined
    for (let index = 0; index < ordered.length; index += 1) {
      const { planned, span } = ordered[index] as (typeof ordered)[number]
      const previous = ordered[index - 1]
      if (previous !== undefined && previous.span.end > span.start) {
        t.fail(`${where}: ${previous.planned.id} and ${planned.id} of ${key} overlapped`)
        return
      }
      // Oldest first: no older event of the key was already accepted when this one
      // started and still ran after it. Exact only when a run starts as it takes its key.
      const claimedMs = runs.find((run) => run.id === planned.id && run.claimedMs !== undefined)?.claimedMs
      const acceptedBefore = (id: string): boolean => claimedMs !== undefined
        ? (acceptedMs.get(id) ?? Infinity) < claimedMs
        : (acceptedAt.get(id) ?? Infinity) < span.start
      const overtaken = plan.concurrency < 1000
        ? undefined
        : ordered.slice(index + 1).find((later) => later.planned.createdAt < planned.createdAt && acceptedBefore(later.planned.id))
      if (overtaken !== undefined) {
        t.fail(`${where}: ${planned.id} of ${key} ran before ${overtaken.planned.id}, older and already accepted`)
        return
      }
      const expectStale = newestDone !== undefined && planned.createdAt < newestDone
      for (const run of runs.filter((run) => run.id === planned.id)) {
        if (run.ordering?.key !== key || run.ordering.stale !== expectStale || run.ordering.newestHandledAt?.getTime() !== newestDone) {
          t.fail(`${where}: ${planned.id} of ${key} was told ${JSON.stringify(run.ordering)}, expected stale ${expectStale}, newest handled ${newestDone === undefined ? 'none' : new Date(newestDone).toISOString()}`)
          return
        }
      }
      // A dead event was not handled to completion: it makes nothing stale.
      if (planned.failures[0] < ATTEMPTS) newestDone = Math.max(newestDone ?? -Infinity, (byId.get(planned.id) as PlannedEvent).createdAt)
    }
  }
  const stale = new Set(runs.filter((run) => run.ordering?.stale === true).map((run) => run.id)).size
  t.pass(`${where}: ${plan.events.length} events over ${keys.size} keys, ${plan.arrivals.length} deliveries, ${runs.length} runs, ${stale} stale: serial per key, oldest first${plan.concurrency < 1000 ? ' (not checked: few slots)' : ''}, stale flags exact, nothing lost or run twice`)
}

export function runOrderingProperty (t: Test, place: OrderingPlace, cases = 12): void {
  const seed = process.env.ORDERING_SEED === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.ORDERING_SEED)
  t.test(`${place.name}: random keys, createdAt, arrival order, duplicates, failures and durations (seed ${seed}; replay with ORDERING_SEED=${seed})`, async (t) => {
    const random = seededRandom(seed)
    for (let index = 0; index < cases; index += 1) {
      const plan = makePlan(random, `evt_prop_${process.pid}_${seed}_${index}`)
      checkRuns(t, plan, await play(place, plan, random), `seed ${seed}, case ${index}`)
    }
  })
}
