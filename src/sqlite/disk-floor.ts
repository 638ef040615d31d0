import { statfs, statfsSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import type { WebhookLogger } from '../core/logger.js'

/** Free bytes on the filesystem holding `directory`, for an unprivileged process. */
export type FreeSpaceReader = (directory: string) => Promise<number>

export const readFreeSpace: FreeSpaceReader = async (directory) => await new Promise((done, fail) => {
  statfs(directory, (error, stats) => { if (error === null) done(stats.bavail * stats.bsize); else fail(error) })
})

/**
 * The free-disk floor under the SQLite file: below `minFreeBytes` free on its
 * filesystem, accepts answer `full` (503 with Retry-After) and health() says
 * why, while the handlers go on draining. A full disk would fail the accepts
 * anyway (SQLITE_FULL, 503), but later, with the handlers' outcome writes
 * failing too and every process on that disk short of space; the floor keeps
 * room for the events already taken to finish and be purged. Read once at
 * start and then on a timer: a statfs per accept would cost a system call each.
 */
export class DiskFloor {
  readonly #directory: string
  readonly #minFreeBytes: number
  readonly #read: FreeSpaceReader
  #free: number | undefined
  #reading = false
  #reportedLow = false

  constructor (path: string, minFreeBytes: number, read: FreeSpaceReader = readFreeSpace) {
    this.#directory = dirname(resolve(path))
    this.#minFreeBytes = minFreeBytes
    this.#read = read
    if (minFreeBytes > 0 && read === readFreeSpace) {
      try {
        const stats = statfsSync(this.#directory)
        this.#free = stats.bavail * stats.bsize
      } catch {
        // Unknown until the timer reads it: a filesystem without statfs is not refused for it.
      }
    }
  }

  /** True when the last reading was under the floor. */
  get low (): boolean {
    return this.#free !== undefined && this.#free < this.#minFreeBytes
  }

  /** Why accepts are refused, for health(); undefined when they are not. */
  reason (): string | undefined {
    if (!this.low) return undefined
    const mib = (bytes: number): string => `${Math.floor(bytes / 1_048_576)} MiB`
    return `the disk holding the SQLite inbox has ${mib(this.#free ?? 0)} free, under minFreeDiskBytes (${mib(this.#minFreeBytes)}): deliveries get 503 until space is freed`
  }

  /** Logs each crossing of the floor once, either way: a 503 with no log line would leave an operator guessing. */
  report (logger: WebhookLogger | undefined): void {
    if (this.low === this.#reportedLow) return
    this.#reportedLow = this.low
    if (this.low) logger?.error({ freeBytes: this.#free, minFreeDiskBytes: this.#minFreeBytes }, this.reason() ?? '')
    else logger?.info({ freeBytes: this.#free, minFreeDiskBytes: this.#minFreeBytes }, 'the disk holding the SQLite inbox has room again; deliveries are accepted')
  }

  /** Reads the free space again; one reading at a time. Resolves with whether it is now under the floor. */
  async check (): Promise<boolean> {
    if (this.#minFreeBytes === 0 || this.#reading) return this.low
    this.#reading = true
    try {
      this.#free = await this.#read(this.#directory)
    } catch {
      // The file checks (file-identity.ts) and the writes themselves report a missing directory.
    } finally {
      this.#reading = false
    }
    return this.low
  }
}
