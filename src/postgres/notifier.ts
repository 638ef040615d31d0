import { randomBytes } from 'node:crypto'
import type { Pool } from 'pg'
import type { WebhookLogger } from '../core/logger.js'
import { redactedStoreError } from './store-errors.js'

/**
 * NOTIFYs at most this often. Under load every group commit wanted one, and the
 * NOTIFYs (and this instance's own LISTEN hearing them) cost Postgres about a
 * tenth of the inbox's acknowledgements; 20 ms is nothing next to the 1 s poll
 * that would otherwise find the events.
 */
const MIN_INTERVAL_MS = 20

/** After the sender's token in a wake-up: the sender runs no handlers, so its events wait for other instances. */
const ACCEPT_ONLY = ':accept-only'

/**
 * What a wake-up asks of the instance that hears it: nothing (its own), to look
 * once its own accepts are taken (the sender runs handlers and its accepts
 * itself), or to look now (an accept-only sender, a redrive, a reconnection).
 */
export type WakeRequest = 'none' | 'after own accepts' | 'now'

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
  readonly #sender = randomBytes(8).toString('hex')
  #busy = false
  #again = false
  #stopped = false
  #timer: NodeJS.Timeout | undefined

  /** `sql` sends a payload; `acceptOnly`: whether this instance runs no handlers now (they may be registered later). */
  constructor (pool: Pool, sql: (payload: string) => string, acceptOnly: () => boolean, logger: WebhookLogger) {
    this.#pool = pool
    this.#sql = sql(this.#sender)
    this.#acceptOnlySql = sql(this.#sender + ACCEPT_ONLY)
    this.#acceptOnly = acceptOnly
    this.#logger = logger
  }

  /**
   * What a wake-up's payload asks of this instance. A redrive sends an empty
   * payload, and a reconnection of the LISTEN connection comes with none.
   */
  heard (payload: string | undefined): WakeRequest {
    if (payload === undefined || payload === '') return 'now'
    const acceptOnly = payload.endsWith(ACCEPT_ONLY)
    const sender = acceptOnly ? payload.slice(0, -ACCEPT_ONLY.length) : payload
    if (sender === this.#sender) return 'none'
    return acceptOnly ? 'now' : 'after own accepts'
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
      this.#logger.debug({ err: redactedStoreError(error) }, 'the Postgres inbox could not NOTIFY the other instances; they find the events at their next poll')
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
