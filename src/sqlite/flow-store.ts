// Flow control's state for the SQLite inbox, kept in the inbox file so that every
// process on it shares one rate, one pause and one count of each handler's runs.
import type { RateLimit } from '../core/flow/limits.js'
import { leaseOnce, type FlowStore, type PauseState, type SlotLease } from '../core/flow/store.js'
import type { WebhookLogger } from '../core/logger.js'
import { PAUSE_REFRESH_MS } from './flow-attempt.js'
import type { FlowStatements } from './flow-schema.js'
import type { GroupCommit } from './group-commit.js'

/** `pause()` without a handler name: no handler name is empty. */
const ALL = ''

/** How long flow control's writes wait for a lock held by another process before the run is put off (STORE_RETRY_MS). */
const FLOW_WRITE_WAIT_MS = 2_000

export interface SqliteFlowParts {
  sql: FlowStatements
  writer: GroupCommit
  owner: string
  leaseMs: number
  logger: () => WebhookLogger | undefined
  /** A handler (or, undefined, every one) was resumed, here or by another process: its waiting runs may start. */
  onResumed: (handler: string | undefined) => void
}

/**
 * The token bucket is the memory store's, one row per handler, read and written
 * in one write transaction (the group commit's `BEGIN IMMEDIATE`), so two
 * processes cannot take one token. The clock is the machine's: the processes
 * that share a file share its clock. A concurrency slot is a row under a lease,
 * renewed with the events' leases while its run lasts: a process that dies stops
 * renewing, and its slots stop counting once `leaseMs` has passed.
 */
export class SqliteFlowStore implements FlowStore {
  readonly scope = 'this SQLite file'
  readonly #parts: SqliteFlowParts
  /** Slots this process holds, by row id: the ones renewed. */
  readonly #slots = new Set<number>()
  #state: PauseState = { all: false, handlers: new Set() }
  #timer: ReturnType<typeof setInterval> | undefined

  constructor (parts: SqliteFlowParts) {
    this.#parts = parts
    this.#state = this.#read()
    this.#timer = setInterval(() => { void this.refresh() }, PAUSE_REFRESH_MS)
    this.#timer.unref()
  }

  async takeToken (handler: string, rate: Required<RateLimit>, reserve: boolean): Promise<number> {
    const { sql } = this.#parts
    return await this.#write(() => {
      const now = Date.now()
      const bucket = sql.token.get(handler) ?? { tokens: rate.burst, at: now }
      let tokens = Math.min(rate.burst, bucket.tokens + Math.max(0, now - bucket.at) * rate.perSecond / 1000)
      let waitMs = 0
      if (tokens >= 1) {
        tokens -= 1
      } else {
        waitMs = Math.max(1, Math.ceil((1 - tokens) * 1000 / rate.perSecond))
        if (reserve) tokens -= 1
      }
      sql.setToken.run({ handler, tokens, at: Math.max(now, bucket.at) })
      return waitMs
    })
  }

  async takeSlot (handler: string, limit: number): Promise<SlotLease | undefined> {
    const { sql, owner, leaseMs } = this.#parts
    const id = await this.#write(() => {
      const now = Date.now()
      sql.expireSlots.run({ handler, now })
      if ((sql.countSlots.get({ handler, now }) ?? 0) >= limit) return undefined
      return Number(sql.takeSlot.run({ handler, owner, leaseUntil: now + leaseMs }).lastInsertRowid)
    })
    if (id === undefined) return undefined
    this.#slots.add(id)
    return leaseOnce(() => { this.#releaseSlot(handler, id) })
  }

  /** Extends the leases of this process's slots: called with the events' lease renewal. */
  renewSlots (): void {
    if (this.#slots.size === 0) return
    const { sql, owner, leaseMs } = this.#parts
    const ids = JSON.stringify([...this.#slots])
    this.#write(() => sql.renewSlots.run({ owner, ids, leaseUntil: Date.now() + leaseMs }))
      .catch((error: unknown) => { this.#parts.logger()?.error({ err: error }, 'the SQLite inbox could not renew its handlers\' concurrency slots; other processes may start more runs once they lapse') })
  }

  async setPaused (handler: string | undefined, paused: boolean): Promise<void> {
    const { sql } = this.#parts
    await this.#write(() => {
      const now = Date.now()
      if (paused) sql.pause.run({ handler: handler ?? ALL, now })
      // resume() without a name resumes everything, the handlers paused by name too.
      else if (handler === undefined) sql.unpauseAll.run()
      else sql.unpause.run({ handler })
      if (!paused) sql.wakePaused.run({ now })
    })
    // Read back at once, so this process acts on its own pause without waiting for the timer.
    this.#state = this.#read()
    if (!paused) this.#parts.onResumed(handler)
  }

  pauseState (): PauseState {
    return this.#state
  }

  /** Reads what is paused, as any process on the file left it, and wakes the runs of what was resumed. Async only for FlowStore's shape. */
  async refresh (): Promise<void> {
    let next: PauseState
    try {
      next = this.#read()
    } catch (error) {
      this.#parts.logger()?.warn({ err: error }, 'the SQLite inbox could not read the pause state; it stays as last read')
      return
    }
    const before = this.#state
    this.#state = next
    const resumed = before.all && !next.all ? [undefined] : [...before.handlers].filter((name) => !next.handlers.has(name))
    for (const handler of resumed) this.#resumedElsewhere(handler)
  }

  close (): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
  }

  /** A slot freed: the run that waited longest for one of this handler's may start now, in whichever process. */
  #releaseSlot (handler: string, id: number): void {
    const { sql, owner } = this.#parts
    // No longer renewed even if the delete fails: the row then lapses with its lease.
    this.#slots.delete(id)
    this.#write(() => {
      sql.releaseSlot.run({ id, owner })
      return sql.wakeConcurrency.run({ handler, now: Date.now(), limit: 1 }).changes
    }).then((woken) => { if (woken > 0) this.#parts.onResumed(handler) }, (error: unknown) => {
      this.#parts.logger()?.warn({ err: error, handler }, 'the SQLite inbox could not give back a concurrency slot; it counts until its lease lapses')
    })
  }

  /** Another process (or `inbox resume`) resumed: the runs put off by the pause are made due, and this process claims them. */
  #resumedElsewhere (handler: string | undefined): void {
    const { sql } = this.#parts
    this.#write(() => sql.wakePaused.run({ now: Date.now() }))
      .then(() => { this.#parts.onResumed(handler) }, (error: unknown) => {
        this.#parts.logger()?.warn({ err: error }, 'the SQLite inbox could not wake the runs put off by a pause; they start within their wait')
      })
  }

  #read (): PauseState {
    const names = this.#parts.sql.paused.all()
    return { all: names.includes(ALL), handlers: new Set(names.filter((name) => name !== ALL)) }
  }

  async #write<T> (run: () => T): Promise<T> {
    return await this.#parts.writer.write(run, { durable: false, deadline: Date.now() + FLOW_WRITE_WAIT_MS })
  }
}
