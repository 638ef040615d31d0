/**
 * The background timers of a durable inbox (polls, purges, due retries), none of
 * which keeps the process alive, all cleared at once on close.
 */
export class UnrefTimers {
  readonly #timers = new Set<NodeJS.Timeout>()

  every (intervalMs: number, task: () => void): void {
    const timer = setInterval(task, intervalMs)
    timer.unref()
    this.#timers.add(timer)
  }

  after (delayMs: number, task: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer)
      task()
    }, delayMs)
    timer.unref()
    this.#timers.add(timer)
  }

  clear (): void {
    for (const timer of this.#timers) clearTimeout(timer)
    this.#timers.clear()
  }
}
