import { randomBytes } from 'node:crypto'
import type { Pool } from 'pg'
import type { WebhookLogger } from '../core/logger.js'

/**
 * NOTIFYs at most this often. Under load every group commit wanted one, and the
 * NOTIFYs (and this instance's own LISTEN hearing them) cost Postgres about a
 * tenth of the inbox's acknowledgements; 20 ms is nothing next to the 1 s poll
 * that would otherwise find the events.
 */
const MIN_INTERVAL_MS = 20

/**
 * Wakes the other instances on the database after accepts committed: one NOTIFY
 * at a time, in its own short transaction, at most one per `MIN_INTERVAL_MS`,
 * and one more after it when batches committed meanwhile. Not in the accept's
 * transaction: a transaction that notifies holds Postgres's one notify lock
 * through its commit, WAL flush included, which made concurrent accepts commit
 * one at a time.
 */
export class WakeNotifier {
  readonly #pool: Pool
  readonly #sql: string
  readonly #acceptOnlySql: string
  readonly #acceptOnly: () => boolean
  readonly #logger: WebhookLogger
  /** In the payload, so that this instance ignores its own wake-ups: it knows what it accepted. */
  readonly sender = randomBytes(8).toString('hex')
  #busy = false
  #again = false
  #stopped = false
  #timer: NodeJS.Timeout | undefined

  /** `acceptOnly`: whether this instance runs no handlers now (they may be registered later). */
  constructor (pool: Pool, sql: (sender: string, acceptOnly: boolean) => string, acceptOnly: () => boolean, logger: WebhookLogger) {
    this.#pool = pool
    this.#sql = sql(this.sender, false)
    this.#acceptOnlySql = sql(this.sender, true)
    this.#acceptOnly = acceptOnly
    this.#logger = logger
  }

  notify (): void {
    if (this.#stopped) return
    if (this.#busy) {
      this.#again = true
      return
    }
    this.#busy = true
    this.#again = false
    const sentAt = Date.now()
    this.#pool.query(this.#acceptOnly() ? this.#acceptOnlySql : this.#sql).catch((error: unknown) => {
      this.#logger.debug({ err: error }, 'the Postgres inbox could not NOTIFY the other instances; they find the events at their next poll')
    }).finally(() => {
      if (this.#stopped) return
      this.#timer = setTimeout(() => {
        this.#timer = undefined
        this.#busy = false
        if (this.#again) this.notify()
      }, Math.max(0, MIN_INTERVAL_MS - (Date.now() - sentAt)))
      this.#timer.unref()
    })
  }

  stop (): void {
    this.#stopped = true
    clearTimeout(this.#timer)
  }
}
