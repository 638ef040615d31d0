import { randomBytes } from 'node:crypto'
import type { Pool } from 'pg'
import type { WebhookLogger } from '../core/logger.js'

/**
 * Wakes the other instances on the database after accepts committed: one NOTIFY
 * at a time, in its own short transaction, and one more after it when batches
 * committed meanwhile. Not in the accept's transaction: a transaction that
 * notifies holds Postgres's one notify lock through its commit, WAL flush
 * included, which made concurrent accepts commit one at a time.
 */
export class WakeNotifier {
  readonly #pool: Pool
  readonly #sql: string
  /** In the payload, so that this instance ignores its own wake-ups: it knows what it accepted. */
  readonly sender = randomBytes(8).toString('hex')
  readonly #logger: WebhookLogger
  #sending = false
  #again = false
  #stopped = false

  constructor (pool: Pool, sql: (sender: string) => string, logger: WebhookLogger) {
    this.#pool = pool
    this.#sql = sql(this.sender)
    this.#logger = logger
  }

  notify (): void {
    if (this.#stopped) return
    if (this.#sending) {
      this.#again = true
      return
    }
    this.#sending = true
    this.#again = false
    this.#pool.query(this.#sql).catch((error: unknown) => {
      this.#logger.debug({ err: error }, 'the Postgres inbox could not NOTIFY the other instances; they find the events at their next poll')
    }).finally(() => {
      this.#sending = false
      if (this.#again) this.notify()
    })
  }

  stop (): void {
    this.#stopped = true
  }
}
