import type { RateLimit } from './limits.js'

/** What is paused, as the store last knew it. */
export interface PauseState {
  /** `pause()` without a handler name: every handler. */
  readonly all: boolean
  /** Handlers paused by name. */
  readonly handlers: ReadonlySet<string>
}

/** A shared run slot, held until `release()` (called once, when the run has ended). */
export interface SlotLease {
  release (): void
}

/** A lease whose `release()` frees the slot the first time only: a second call must not free a slot another run took since. */
export function leaseOnce (free: () => void): SlotLease {
  let released = false
  return {
    release: () => {
      if (released) return
      released = true
      free()
    }
  }
}

/**
 * The questions flow control asks an inbox's store: River's driver shape, where
 * the engine (`gate.ts`) decides and the store only answers small questions. A
 * store keeps what must be shared by every receiver that uses it (the memory
 * inbox: this process; BullMQ: Redis). The third thing a store must do, deferring
 * one event's run of some handlers until a time without counting an attempt, is
 * the inbox's own scheduling: see docs/design.md ("Flow control").
 */
export interface FlowStore {
  /** Where the state lives, for docs and messages: `this process`, `Redis`. */
  readonly scope: string
  /**
   * Takes one token from the handler's bucket: 0 when taken (the run may start),
   * otherwise how many milliseconds until one will be there. With `reserve`, that
   * future token is taken now (the bucket goes into debt): the caller comes back
   * then and runs without asking again. Without, nothing is taken.
   */
  takeToken (handler: string, rate: Required<RateLimit>, reserve: boolean): number | Promise<number>
  /** Pauses or resumes one handler, or, with `handler` undefined, all of them. */
  setPaused (handler: string | undefined, paused: boolean): void | Promise<void>
  /** The pause state as last known: synchronous, read on every admission and by `health()`. */
  pauseState (): PauseState
  /**
   * Takes one of the handler's `limit` run slots where they are shared by every
   * receiver on the store (SQLite: the processes on the file; Postgres: a
   * session advisory lock on the control connection; BullMQ: a leased slot in Redis), so a
   * crashed process's slot frees itself: the lease, or undefined when all are
   * taken. Without it (the memory store) the gate's count in the process is the limit.
   */
  takeSlot? (handler: string, limit: number): SlotLease | undefined | Promise<SlotLease | undefined>
  /**
   * Reads the shared pause state now, where a store keeps it outside the process:
   * for a one-shot reader such as `sir-webhooks inbox stats`, which never started
   * the background refresh a receiver's store runs.
   */
  refresh? (): void | Promise<void>
  /** Stops whatever the store runs in the background. */
  close? (): void | Promise<void>
}
