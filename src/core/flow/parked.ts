import type { RegisteredHandler } from '../handlers.js'
import { isDeferral, type Admission, type DeferReason, type Deferral, type FlowGate } from './gate.js'

/** A run that can be parked: its handler, and whether it was just woken from the front of its line. */
export interface Parkable {
  readonly handler: RegisteredHandler
  woken: boolean
}

interface Line<T> {
  runs: T[]
  timer: ReturnType<typeof setTimeout> | undefined
  /** Why the line waits: the last deferral's reason, counted for the runs that queue behind it. */
  reason: DeferReason
}

/**
 * The memory inbox's deferred runs, one first-in-first-out line per handler, so
 * a handler's runs start in the order they were accepted. A line is woken one
 * run at a time: by its timer (a rate's next token), by a run of the handler
 * ending (concurrency) or by `resume()`; a woken run that starts wakes the next.
 * One timer per handler, not per run: a paced backlog of 100 000 events costs
 * one timer.
 */
export class ParkedRuns<T extends Parkable> {
  readonly #lines = new Map<string, Line<T>>()
  readonly #start: (run: T) => void
  #size = 0

  /** `start` hands a woken run back to the queue, which admits it again. */
  constructor (start: (run: T) => void) {
    this.#start = start
  }

  /** Runs parked now. */
  get size (): number {
    return this.#size
  }

  /** Whether runs of this handler wait already: a new one then queues behind them. */
  waiting (handler: string): boolean {
    return this.#lines.has(handler)
  }

  /**
   * Asks the gate whether the run may start now: its release when it may, else
   * undefined and the run parked. Behind runs of its handler already parked, it
   * waits its turn. The memory store answers synchronously.
   */
  admit (run: T, gate: FlowGate): (() => void) | undefined {
    const name = run.handler.name
    const line = this.#lines.get(name)
    if (!run.woken && line !== undefined) {
      gate.noteDeferred(name, line.reason)
      this.park(run, undefined)
      return undefined
    }
    const admission = gate.admit(run.handler) as Admission
    if (isDeferral(admission)) {
      this.park(run, admission)
      return undefined
    }
    if (run.woken) {
      // Started: the next in line may be able to start too.
      run.woken = false
      this.wake(name)
    }
    return admission.release
  }

  park (run: T, deferral: Deferral | undefined): void {
    const name = run.handler.name
    let line = this.#lines.get(name)
    if (line === undefined) {
      line = { runs: [], timer: undefined, reason: deferral?.reason ?? 'paused' }
      this.#lines.set(name, line)
    }
    if (deferral !== undefined) line.reason = deferral.reason
    // A woken run that may not start after all keeps its place at the front.
    if (run.woken) line.runs.unshift(run)
    else line.runs.push(run)
    run.woken = false
    this.#size += 1
    if (deferral?.reason === 'rate' && line.timer === undefined) {
      line.timer = setTimeout(() => {
        (line as Line<T>).timer = undefined
        this.wake(name)
      }, deferral.retryInMs)
    }
  }

  /** Starts the first run parked for this handler, or for every handler when undefined. */
  wake (handler: string | undefined): void {
    if (handler === undefined) {
      for (const name of [...this.#lines.keys()]) this.wake(name)
      return
    }
    const line = this.#lines.get(handler)
    if (line === undefined || line.timer !== undefined) return
    const run = line.runs.shift()
    if (run === undefined) return
    this.#size -= 1
    if (line.runs.length === 0) this.#lines.delete(handler)
    run.woken = true
    this.#start(run)
  }

  /** Takes every parked run out, timers stopped: for close(). */
  clear (): T[] {
    const runs: T[] = []
    for (const line of this.#lines.values()) {
      if (line.timer !== undefined) clearTimeout(line.timer)
      runs.push(...line.runs)
    }
    this.#lines.clear()
    this.#size = 0
    return runs
  }
}
