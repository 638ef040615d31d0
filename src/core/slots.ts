/**
 * At most `concurrency` tasks at once, the rest waiting first in, first out. It
 * replaces p-queue here: the queue only ever adds and clears, and p-queue's
 * per-task bookkeeping (ids, events, timeouts, abort signals) was a measurable
 * share of a no-op delivery's cost (docs/performance.md). `run` returns true when
 * the task finished synchronously, which frees its slot at once; otherwise it
 * calls `release` when the task ends. A callback rather than a returned promise:
 * chaining on the task's promise cost one more promise per handler run.
 */
export class Slots<T> {
  readonly #concurrency: number
  readonly #run: (task: T) => boolean
  #running = 0
  #waiting: T[] = []
  // Read position in #waiting: shifting a long array moves every element.
  #head = 0
  #pumping = false

  constructor (concurrency: number, run: (task: T) => boolean) {
    this.#concurrency = concurrency
    this.#run = run
  }

  /** Starts the task now if a slot is free, else when one frees up. `run` must not throw. */
  add (task: T): void {
    this.#waiting.push(task)
    this.#pump()
  }

  /** Drops the tasks not yet started; running ones finish on their own. */
  clear (): void {
    this.#waiting = []
    this.#head = 0
  }

  // A loop, not recursion: a long line of synchronous tasks must not grow the stack.
  #pump (): void {
    if (this.#pumping) return
    this.#pumping = true
    try {
      while (this.#running < this.#concurrency && this.#head < this.#waiting.length) {
        const task = this.#waiting[this.#head] as T
        this.#head += 1
        this.#running += 1
        if (this.#run(task)) this.#running -= 1
      }
    } finally {
      this.#pumping = false
    }
    if (this.#head === this.#waiting.length) {
      this.#waiting.length = 0
      this.#head = 0
    } else if (this.#head > 1024 && this.#head * 2 > this.#waiting.length) {
      this.#waiting = this.#waiting.slice(this.#head)
      this.#head = 0
    }
  }

  /** Frees the slot of a task that did not finish synchronously. `run` must not throw. */
  readonly release = (): void => {
    this.#running -= 1
    this.#pump()
  }
}
