import type { WaitingRuns } from '../core/inbox.js'
import type { EventOutcome } from '../core/outcome.js'
import { EXIT_FAILED, EXIT_OK, type Io } from './args.js'
import type { Show } from './inbox-format.js'
import type { OperatorInbox } from './inbox-stores.js'
import { printable } from './printable.js'

// The operator's flow-control commands and signals: pause and resume every
// receiver on a store, and what `inbox stats` adds to the counts (the oldest
// waiting event, what is paused).

const NO_FLOW = 'this store has no flow control (its inbox offers no flowStore()), so nothing can be paused from here; nothing was changed'

/**
 * `inbox pause|resume [--handler NAME]`: through the store's flow state, which
 * every receiver on it reads (on BullMQ within half a second). Deliveries are
 * still verified, stored and acknowledged; the runs wait.
 */
export async function runPause (inbox: OperatorInbox, paused: boolean, handler: string | undefined, io: Io, show: Show): Promise<number> {
  const store = inbox.flowStore?.()
  if (store === undefined) {
    io.stderr.write(`sir-webhooks inbox ${paused ? 'pause' : 'resume'}: ${NO_FLOW}\n`)
    return EXIT_FAILED
  }
  await store.setPaused(handler, paused)
  const which = handler === undefined ? 'every handler' : `handler ${printable(handler)}`
  show({ paused, handler: handler ?? null, scope: store.scope }, () => paused
    ? `paused ${which} on every receiver of this store (${store.scope}): deliveries are still accepted; runs wait until "inbox resume"\n`
    : `resumed ${which}: the waiting runs drain at each handler's pace${handler === undefined ? ' (handlers paused by name are resumed too)' : ''}\n`)
  return EXIT_OK
}

export interface FlowSignals {
  /** The oldest pending event's age in ms; null when none waits, undefined when the store cannot say. */
  oldestWaitingMs: number | null | undefined
  oldestWaitingReceivedAt?: string
  /** What is paused; undefined when the store has no flow control. */
  paused: { all: boolean, handlers: string[] } | undefined
  /** Events waiting on flow control, by handler and reason; left out where the store does not record why. */
  waiting?: WaitingRuns[]
}

/** What `inbox stats` shows besides the counts, each where the store can tell. */
export async function flowSignals (inbox: OperatorInbox, now = Date.now()): Promise<FlowSignals> {
  let oldest: EventOutcome | undefined | null
  if (inbox.events !== undefined) oldest = (await inbox.events({ state: 'pending', limit: 1, oldestFirst: true }))[0] ?? null
  const store = inbox.flowStore?.()
  await store?.refresh?.()
  const state = store?.pauseState()
  const signals: FlowSignals = {
    oldestWaitingMs: oldest === undefined ? undefined : oldest === null ? null : Math.max(0, now - oldest.receivedAt.getTime()),
    paused: state === undefined ? undefined : { all: state.all, handlers: [...state.handlers].sort() }
  }
  if (oldest !== undefined && oldest !== null) signals.oldestWaitingReceivedAt = oldest.receivedAt.toISOString()
  if (inbox.waiting !== undefined) signals.waiting = await inbox.waiting()
  return signals
}

function age (ms: number): string {
  const seconds = Math.floor(ms / 1000)
  if (seconds < 60) return `${seconds}s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`
  return `${Math.floor(seconds / 3600)}h${String(Math.floor(seconds / 60) % 60).padStart(2, '0')}m`
}

/** The lines under the counts table. */
export function describeSignals (signals: FlowSignals): string {
  const { oldestWaitingMs, oldestWaitingReceivedAt, paused } = signals
  const oldest = oldestWaitingMs === undefined
    ? 'not known to this store'
    : oldestWaitingMs === null ? 'none waiting' : `${age(oldestWaitingMs)} (received ${oldestWaitingReceivedAt ?? ''})`
  const pausedText = paused === undefined
    ? 'no flow control on this store'
    : paused.all ? 'every handler' : paused.handlers.length === 0 ? 'nothing' : paused.handlers.map(printable).join(', ')
  return `\noldest waiting  ${oldest}\npaused          ${pausedText}\n` + describeWaiting(signals.waiting)
}

/** `deferred        callPartner: 120 rate, 3 retryLater`, one line per handler; nothing where none waits or the store cannot tell. */
function describeWaiting (waiting: WaitingRuns[] | undefined): string {
  // None waiting: no line, so the table reads as on a store that cannot tell (--json says []).
  if (waiting === undefined) return ''
  const byHandler = new Map<string, string[]>()
  for (const { handler, reason, events } of waiting) byHandler.set(handler, [...(byHandler.get(handler) ?? []), `${events} ${printable(reason)}`])
  return [...byHandler].map(([handler, counts], index) => `${index === 0 ? 'deferred' : ''}`.padEnd(16) + `${printable(handler)}: ${counts.join(', ')}\n`).join('')
}
