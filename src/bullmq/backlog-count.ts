import type { Queue } from 'bullmq'
import type { JobData } from './jobs.js'

/** How old a count may be and still stand in for a fresh one, far from the bound. */
const FRESH_FOR_MS = 250

/**
 * The queue's unfinished jobs, for the backlog bound. Counting them is a Redis
 * script over five sets; asked on every accept it was one of five round trips
 * and a share of the receiver's CPU. Far from the bound (under half of it) a
 * count at most 250 ms old, plus what this receiver added since, answers
 * instead: other receivers' accepts since are not in it, which matters only
 * near the bound, and there (and before the first count) every accept counts
 * afresh, as each did before.
 */
export class BacklogCount {
  readonly #queue: Queue<JobData>
  #counted: { at: number, value: number, addedSince: number } | undefined
  #counting: Promise<number> | undefined

  constructor (queue: Queue<JobData>) {
    this.#queue = queue
  }

  /** Unfinished jobs (delayed ones too: a job backing off before its retry is still unfinished work). */
  async unfinished (limit: number): Promise<number> {
    const counted = this.#counted
    const far = counted !== undefined && counted.value + counted.addedSince < limit / 2
    if (!far) return await this.#count()
    if (Date.now() - counted.at < FRESH_FOR_MS) return counted.value + counted.addedSince
    // Still far at the last count: accepts that arrive while a new one is on its way share it.
    this.#counting ??= this.#count().finally(() => { this.#counting = undefined })
    return await this.#counting
  }

  /** An accept added a job. */
  added (): void {
    if (this.#counted !== undefined) this.#counted.addedSince += 1
  }

  async #count (): Promise<number> {
    const at = Date.now()
    const counts = await this.#queue.getJobCounts('wait', 'active', 'delayed', 'prioritized', 'paused')
    const value = Object.values(counts).reduce<number>((sum, count) => sum + Number(count), 0)
    this.#counted = { at, value, addedSince: 0 }
    return value
  }
}
