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
  readonly #waiting: Array<(entered: boolean) => void> = []
  #running = 0
  #closed = false
  #admitting = false
  #askedAgain = false

  /** `allowed` may tell `changed()` of a change as it is read (the idle return to every slot). */
  constructor (allowed: () => number) {
    this.#allowed = allowed
  }

  /**
   * Resolves true once this run may start (`leave()` must follow), or false
   * when the gate closed first: the run must not start, and holds no place.
   */
  async enter (): Promise<boolean> {
    if (this.#closed) return false
    if (this.#waiting.length === 0) {
      const limit = this.#allowed()
      if (this.#waiting.length === 0 && this.#running < limit && !this.#closed) {
        this.#running += 1
        return true
      }
    }
    return await new Promise<boolean>((resolve) => { this.#waiting.push(resolve) })
  }

  leave (): void {
    this.#running -= 1
    this.#admit()
  }

  /** The allowance may have risen: the waiting runs that now fit start. */
  changed (): void {
    this.#admit()
  }

  /** Close: the waiting runs are turned away (their jobs go back for another receiver), and so is any later one. */
  close (): void {
    this.#closed = true
    for (const resolve of this.#waiting.splice(0)) resolve(false)
  }

  // Not re-entered: reading the allowance may call changed() back, and a nested
  // pass would admit runs that the outer pass then counts again.
  #admit (): void {
    if (this.#admitting) {
      this.#askedAgain = true
      return
    }
    this.#admitting = true
    try {
      do {
        this.#askedAgain = false
        while (this.#waiting.length > 0 && !this.#closed && this.#running < this.#allowed()) {
          const resolve = this.#waiting.shift()
          if (resolve === undefined) break
          this.#running += 1
          resolve(true)
        }
      } while (this.#askedAgain)
    } finally {
      this.#admitting = false
    }
  }
}
