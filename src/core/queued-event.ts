import type { AnyEvent } from './events.js'
import type { RegisteredHandler } from './handlers.js'
import type { HandlerRun } from './inbox.js'
import type { DeferralRecord } from './flow/gate.js'
import type { MemoryOrderedRef } from './ordering/memory-lines.js'

// The memory queue's records (core/queue.ts), kept apart so the dispatcher stays one readable file.

export interface QueuedEvent {
  event: AnyEvent
  receivedAt: number
  /** One per handler to run, fixed at accept time. */
  tasks: HandlerTask[]
  /** How many tasks are not yet settled (succeeded or failed for good). */
  unsettled: number
  /** How many of its handlers are running now. */
  running: number
  whenAnswered: ((callback: () => void) => void) | undefined
  /** Settles the promise handed to the platform's waitUntil, where one was given. */
  finished: (() => void) | undefined
  /** In the list of unfinished events; false once it finished or was drained. */
  listed: boolean
  previous: QueuedEvent | undefined
  next: QueuedEvent | undefined
  /** Its place in its ordering key's line, when it has a key; `dead` once a handler of it dead-lettered. */
  ordered: OrderedRef | undefined
  dead: boolean
}

export interface OrderedRef extends MemoryOrderedRef {
  queued: QueuedEvent
}

/**
 * One handler of one event. It is also the `HandlerRun` the runtime is given, so a
 * run allocates nothing of its own; `attempt` is 0 until the first one is scheduled.
 */
export interface HandlerTask extends HandlerRun {
  readonly queued: QueuedEvent
  settled: boolean
  /** Attempts that began running: `attempt` is set when one is scheduled, before it waits for a slot. */
  started: number
  /** Flow control: just woken from the front of its handler's line; its admission, to release when it ends; its RetryLater record. */
  woken: boolean
  release: (() => void) | undefined
  deferrals: DeferralRecord | undefined
}

/** An accepted event's handlers that had not finished when the queue was drained. */
export interface UnfinishedRun {
  event: AnyEvent
  receivedAt: number
  handler: RegisteredHandler
  /** Attempts started; 0 when the handler never began. */
  attempts: number
}
