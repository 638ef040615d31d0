/**
 * Handler runs held to an allowance that moves (core/accept-priority.ts), for a
 * worker that is handed its jobs rather than asking for them. BullMQ applies a
 * lowered or raised `concurrency` only as a running job ends, so a worker set
 * to one slot stayed at one for as long as that job ran, and for ever behind a
 * handler that never returns. Its `concurrency` stays whole; each run enters
 * here before its handlers and leaves after, waiting while as many as allowed
 * are running, and `changed()` lets the waiting in as soon as the allowance rises.
 */
export class AllowanceGate {
  readonly #allowed: () => number
  readonly #waiting: Array<() => void> = []
  #running = 0
  #open = false

  constructor (allowed: () => number) {
    this.#allowed = allowed
  }

  /** Resolves once this run may start; `leave()` must follow it. */
  async enter (): Promise<void> {
    if (this.#waiting.length === 0 && this.#fits()) {
      this.#running += 1
      return
    }
    await new Promise<void>((resolve) => { this.#waiting.push(resolve) })
  }

  leave (): void {
    this.#running -= 1
    this.#admit()
  }

  /** The allowance may have risen: the waiting runs that now fit start. */
  changed (): void {
    this.#admit()
  }

  /** No allowance from now on (close): every waiting run starts, its handlers within the grace period. */
  openAll (): void {
    this.#open = true
    this.#admit()
  }

  #fits (): boolean {
    return this.#open || this.#running < this.#allowed()
  }

  #admit (): void {
    while (this.#waiting.length > 0 && this.#fits()) {
      this.#running += 1
      this.#waiting.shift()?.()
    }
  }
}
