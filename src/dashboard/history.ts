import type { Sample } from './samples.js'

type Counts = Omit<Sample, 't'>

/** The since-start chart: `points` of `bucketSeconds` each, oldest first; `t` is a bucket's start. */
export interface HistoryView {
  bucketSeconds: number
  points: Sample[]
}

/**
 * Since the dashboard started, in bounded memory: the samples are summed into
 * buckets, and when there are more than `capacity` buckets, neighbours are
 * merged and the bucket doubles in width. A day at the default interval is 240
 * buckets of 6 min 40 s; a month, 240 of about three hours. Memory never grows
 * past `capacity` buckets, however long the process runs.
 */
export class History {
  readonly #capacity: number
  #bucketSeconds: number
  #buckets: Sample[] = []

  constructor (capacity: number, intervalSeconds: number) {
    this.#capacity = capacity
    this.#bucketSeconds = intervalSeconds
  }

  add (sample: Sample): void {
    const last = this.#buckets[this.#buckets.length - 1]
    if (last !== undefined && sample.t < last.t + this.#bucketSeconds) {
      for (const key of Object.keys(sample) as Array<keyof Counts | 't'>) if (key !== 't') last[key] += sample[key]
      return
    }
    this.#buckets.push({ ...sample })
    if (this.#buckets.length > this.#capacity) this.#halve()
  }

  /** Merges each pair of neighbours: half the buckets, twice as wide. */
  #halve (): void {
    const merged: Sample[] = []
    for (let index = 0; index < this.#buckets.length; index += 2) {
      const first = this.#buckets[index] as Sample
      const second = this.#buckets[index + 1]
      if (second !== undefined) for (const key of Object.keys(second) as Array<keyof Counts | 't'>) if (key !== 't') first[key] += second[key]
      merged.push(first)
    }
    this.#buckets = merged
    this.#bucketSeconds *= 2
  }

  view (): HistoryView {
    return { bucketSeconds: this.#bucketSeconds, points: this.#buckets.map((bucket) => ({ ...bucket })) }
  }
}
