import { randomUUID } from 'node:crypto'
import { createRequire } from 'node:module'
import type BetterSqlite3 from 'better-sqlite3'
import { reportFailures, runAttempt } from '../core/attempt.js'
import { backoffDelay } from '../core/backoff.js'
import type { AnyEvent } from '../core/events.js'
import { wakeOrTimeout } from '../core/timeouts.js'
import { assertNotStarted, type AcceptOutcome, type Inbox, type InboxRuntime, type PurgeOptions, type PurgeResult } from '../core/inbox.js'
import { defaults } from '../core/options.js'
import { errorSummary, type DeadLetterQuery, type EventOutcome, type OutcomeState } from '../core/outcome.js'
import { openSchema, type EventRow, type Statements } from './schema.js'
import { resolveSqliteOptions, type ResolvedSqliteOptions, type SqliteInboxOptions } from './options.js'

export type { SqliteInboxOptions } from './options.js'
export type { DeadLetterQuery, EventOutcome, OutcomeState } from '../core/outcome.js'
export type { PurgeOptions, PurgeResult } from '../core/inbox.js'

/**
 * better-sqlite3 is an optional peer dependency, loaded only when a SQLite inbox
 * is made, so that users of the other inboxes never need it installed.
 */
function loadDriver (): typeof BetterSqlite3 {
  try {
    return createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3
  } catch (error) {
    throw new Error('sir-webhooks: sqliteInbox() needs better-sqlite3 12.x; install it with `npm install better-sqlite3@12`', { cause: error })
  }
}

/**
 * A durable inbox in one SQLite file. A 2xx is answered only once the event's row
 * is committed with `synchronous=FULL`. The id is the primary key, so dedupe and
 * enqueue are one insert. Events are processed under a lease that is renewed while
 * handlers run; a process that dies stops renewing, and its events are taken over
 * once the lease expires, by whichever process shares the file or by the same
 * receiver restarted.
 */
export class SqliteInbox implements Inbox {
  /** Events survive restarts; handlers are told apart by name. */
  readonly durable = true
  readonly #options: ResolvedSqliteOptions
  readonly #owner = randomUUID()
  readonly #active = new Set<string>()
  readonly #timers = new Set<NodeJS.Timeout>()
  #db: BetterSqlite3.Database | undefined
  #sql: Statements | undefined
  #acceptTransaction: ((row: { id: string, type: string, event: string, receivedAt: number }) => AcceptOutcome) | undefined
  #runtime: InboxRuntime | undefined
  #closing = false
  #closed: Promise<void> | undefined
  #wakeScheduled = false
  #whenIdle: (() => void) | undefined

  constructor (options: SqliteInboxOptions) {
    this.#options = resolveSqliteOptions(options)
    const Database = loadDriver()
    const db = new Database(this.#options.path)
    try {
      this.#sql = openSchema(db, this.#options.acceptTimeoutMs)
    } catch (error) {
      db.close()
      throw error
    }
    this.#db = db
    const sql = this.#sql
    const accept = db.transaction((row: { id: string, type: string, event: string, receivedAt: number }): AcceptOutcome => {
      // An id already here is a duplicate even when the queue is full: it was
      // recorded, so the sender may stop.
      if (sql.exists.get(row.id) !== undefined) return 'duplicate'
      if (sql.countPending.get()! >= (this.#runtime?.options.maxQueueSize ?? defaults.maxQueueSize)) return 'full'
      sql.insert.run(row)
      return 'accepted'
    })
    // IMMEDIATE takes the write lock first, so two processes cannot both pass the
    // duplicate check; the wait for it is bounded by busy_timeout (acceptTimeoutMs).
    this.#acceptTransaction = accept.immediate
  }

  start (runtime: InboxRuntime): void {
    assertNotStarted(this.#runtime !== undefined)
    if (this.#db === undefined) throw new Error('sir-webhooks: this SQLite inbox was closed; create a new one')
    this.#runtime = runtime
    this.#every(this.#options.pollIntervalMs, () => { this.#pump() })
    this.#every(Math.max(50, Math.floor(this.#options.leaseMs / 3)), () => { this.#renewLeases() })
    this.#every(this.#options.purgeIntervalMs, () => { this.#purgeQuietly() })
    // Events left by a previous run whose lease already expired start now.
    this.#wake()
  }

  /** Events accepted and not yet done or dead, across every process sharing the file. */
  get size (): number {
    try {
      return this.#sql?.countPending.get() ?? 0
    } catch {
      return 0
    }
  }

  /** Events whose handlers this process is running now. */
  get running (): number {
    return this.#active.size
  }

  /** Events in the file by state, across every process sharing it. */
  async counts (): Promise<Record<OutcomeState, number>> {
    const counts: Record<OutcomeState, number> = { pending: 0, done: 0, dead: 0 }
    for (const { state, count } of this.#open().countByState.all()) counts[state] = count
    return counts
  }

  accept (event: AnyEvent, receivedAt: number): AcceptOutcome {
    const transaction = this.#acceptTransaction
    if (transaction === undefined || this.#closing) return 'unavailable'
    let outcome: AcceptOutcome
    try {
      outcome = transaction({ id: event.id, type: event.type, event: JSON.stringify(event), receivedAt })
    } catch (error) {
      // SQLITE_BUSY past acceptTimeoutMs, SQLITE_FULL, SQLITE_IOERR…: the row is
      // not committed, so the sender must try again.
      this.#runtime?.logger.warn({ err: error, event: { id: event.id, type: event.type } }, 'the SQLite inbox could not record the event')
      return 'unavailable'
    }
    if (outcome === 'accepted') this.#wake()
    return outcome
  }

  async outcome (id: string): Promise<EventOutcome | undefined> {
    const row = this.#open().get.get(id)
    return row === undefined ? undefined : toOutcome(row)
  }

  async deadLetters (query: DeadLetterQuery = {}): Promise<EventOutcome[]> {
    return this.#open().deadLetters.all(query.limit ?? 100).map(toOutcome)
  }

  async redrive (id: string): Promise<boolean> {
    const sql = this.#open()
    const changed = sql.redrive.run({ id, now: this.#now() }).changes === 1
    if (changed) this.#wake()
    return changed
  }

  /**
   * Deletes done events past `retentionSeconds` and dead ones past
   * `deadLetterRetentionSeconds`; with `before`, every done and dead event that
   * finished before it. Pending events are never purged.
   */
  async purge (options: PurgeOptions = {}): Promise<PurgeResult> {
    const sql = this.#open()
    if (options.before !== undefined) {
      const before = options.before.getTime()
      return { done: sql.purge.run({ state: 'done', before }).changes, dead: sql.purge.run({ state: 'dead', before }).changes }
    }
    const now = this.#now()
    const retentionSeconds = this.#options.retentionSeconds ?? this.#runtime?.options.dedupe.ttlSeconds ?? defaults.dedupe.ttlSeconds
    const done = sql.purge.run({ state: 'done', before: now - retentionSeconds * 1000 }).changes
    const deadSeconds = this.#options.deadLetterRetentionSeconds
    const dead = deadSeconds === undefined ? 0 : sql.purge.run({ state: 'dead', before: now - deadSeconds * 1000 }).changes
    return { done, dead }
  }

  /**
   * How the inbox's own connection commits: what a 2xx stands on. For operators
   * and tests; the values are SQLite's pragma names.
   */
  durability (): { journalMode: string, synchronous: 'OFF' | 'NORMAL' | 'FULL' | 'EXTRA' } {
    const db = this.#db
    if (db === undefined) throw new Error('sir-webhooks: this SQLite inbox is closed; open a new one on the same path to query it')
    const levels = ['OFF', 'NORMAL', 'FULL', 'EXTRA'] as const
    return {
      journalMode: db.pragma('journal_mode', { simple: true }) as string,
      synchronous: levels[db.pragma('synchronous', { simple: true }) as number] ?? 'OFF'
    }
  }

  /**
   * Stops taking work and waits up to `graceMs` for running events. Unlike the
   * memory inbox it dead-letters nothing: what is unfinished stays in the file
   * for the next start. Events whose handlers are still running keep their lease
   * until it expires, since the receiver aborts their signal only after this
   * returns: released now, another process sharing the file would start them
   * while they still run here. Safe to call more than once.
   */
  close (graceMs: number): Promise<void> {
    this.#closed ??= this.#close(graceMs)
    return this.#closed
  }

  async #close (graceMs: number): Promise<void> {
    if (this.#db === undefined) return
    this.#closing = true
    if (this.#active.size > 0) {
      await wakeOrTimeout(graceMs, (wake) => { this.#whenIdle = wake })
      this.#whenIdle = undefined
    }
    for (const timer of this.#timers) clearTimeout(timer)
    this.#timers.clear()
    const db = this.#db
    this.#db = undefined
    try {
      this.#sql?.releaseLeases.run({ owner: this.#owner, running: this.#running() })
    } finally {
      this.#sql = undefined
      this.#acceptTransaction = undefined
      db.close()
    }
    if (this.#active.size > 0) {
      this.#runtime?.logger.warn({ events: this.#active.size }, 'close() ran out of time; unfinished events stay in the SQLite inbox and run again once their lease expires')
    }
  }

  /** Queries on a closed inbox throw: an empty answer would read as "no such event". */
  #open (): Statements {
    if (this.#sql === undefined) throw new Error('sir-webhooks: this SQLite inbox is closed; open a new one on the same path to query it')
    return this.#sql
  }

  /** The ids this process is running, as the JSON array the statements take. */
  #running (): string {
    return JSON.stringify([...this.#active])
  }

  #now (): number {
    return (this.#runtime?.options.clock ?? Date.now)()
  }

  #every (intervalMs: number, task: () => void): void {
    const timer = setInterval(task, intervalMs)
    timer.unref()
    this.#timers.add(timer)
  }

  #after (delayMs: number, task: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer)
      task()
    }, delayMs)
    timer.unref()
    this.#timers.add(timer)
  }

  /** setImmediate: an accept's 2xx is written before any handler starts. */
  #wake (): void {
    if (this.#wakeScheduled || this.#runtime === undefined) return
    this.#wakeScheduled = true
    setImmediate(() => {
      this.#wakeScheduled = false
      this.#pump()
    })
  }

  #pump (): void {
    const runtime = this.#runtime
    const sql = this.#sql
    if (runtime === undefined || sql === undefined || this.#closing) return
    const free = runtime.options.concurrency - this.#active.size
    if (free <= 0) return
    const now = this.#now()
    let rows: EventRow[]
    try {
      rows = sql.claim.all({ owner: this.#owner, now, leaseUntil: now + this.#options.leaseMs, limit: free, running: this.#running() })
    } catch (error) {
      runtime.logger.error({ err: error }, 'the SQLite inbox could not claim events; will try again')
      return
    }
    for (const row of rows) {
      this.#active.add(row.id)
      this.#process(row, runtime, sql)
        .catch((error: unknown) => { this.#outcomeNotRecorded(row, runtime, sql, error) })
        .finally(() => {
          this.#active.delete(row.id)
          if (this.#active.size === 0) this.#whenIdle?.()
          this.#wake()
        })
    }
  }

  async #process (row: EventRow, runtime: InboxRuntime, sql: Statements): Promise<void> {
    const event = JSON.parse(row.event) as AnyEvent
    const { retry } = runtime.options
    const tag = { id: event.id, type: event.type }
    if (row.attempts > retry.attempts) {
      // Started as often as retries allow and never finished: the process died
      // each time. Running it again could crash the receiver forever.
      const error = new Error(`the receiver stopped during each of ${row.attempts - 1} attempts`)
      sql.finish.run({ id: row.id, owner: this.#owner, state: 'dead', now: this.#now(), succeeded: row.succeeded, lastError: errorSummary(error) })
      await runtime.deadLetter({ event, reason: 'handler_failed', error, attempts: row.attempts - 1, receivedAt: new Date(row.received_at) })
      return
    }
    const result = await runAttempt(runtime, event, row.received_at, row.attempts, JSON.parse(row.succeeded) as string[])
    // Shutdown cut this attempt short: its handlers were told to stop, and one that
    // returned since may have stopped half-way, so nothing of it is recorded. The
    // event stays pending: close() releases it if it settled in time (the file may
    // already be closed otherwise, and the lease then expires). The attempt counts.
    if (this.#sql !== sql || runtime.signal.aborted) return
    const succeeded = JSON.stringify(result.succeeded)
    const last = result.failures.at(-1)
    if (last === undefined) {
      sql.finish.run({ id: row.id, owner: this.#owner, state: 'done', now: this.#now(), succeeded, lastError: null })
      return
    }
    const lastError = `${last.key}: ${errorSummary(last.error)}`
    if (row.attempts < retry.attempts) {
      const delay = backoffDelay(row.attempts, retry)
      sql.retryLater.run({ id: row.id, owner: this.#owner, nextAttemptAt: this.#now() + delay, succeeded, lastError })
      this.#after(delay, () => { this.#pump() })
      await reportFailures(runtime, event, row.received_at, row.attempts, result.failures, delay)
      return
    }
    if (sql.finish.run({ id: row.id, owner: this.#owner, state: 'dead', now: this.#now(), succeeded, lastError }).changes === 0) {
      runtime.logger.warn({ event: tag }, 'the event was taken over by another process before its last failure was recorded')
      return
    }
    await reportFailures(runtime, event, row.received_at, row.attempts, result.failures, undefined)
  }

  /**
   * An outcome write failed (a full disk, a lock held past busy_timeout…): the
   * row still says this process runs it. Its lease is expired now, so that it is
   * claimed again and re-run (at-least-once); if even that write fails, the lease
   * runs out within leaseMs, since only rows still running are renewed.
   */
  #outcomeNotRecorded (row: EventRow, runtime: InboxRuntime, sql: Statements, error: unknown): void {
    const tag = { id: row.id, type: row.type }
    runtime.logger.error({ err: error, event: tag }, 'the SQLite inbox could not record an outcome; the event will run again')
    if (this.#sql !== sql) return
    try {
      sql.expireLease.run({ id: row.id, owner: this.#owner, now: this.#now() })
    } catch (expireError) {
      runtime.logger.error({ err: expireError, event: tag }, 'the SQLite inbox could not expire the lease either; the event runs again once it lapses')
    }
  }

  #renewLeases (): void {
    if (this.#active.size === 0) return
    try {
      this.#sql?.renewLeases.run({ owner: this.#owner, leaseUntil: this.#now() + this.#options.leaseMs, running: this.#running() })
    } catch (error) {
      this.#runtime?.logger.error({ err: error }, 'the SQLite inbox could not renew its leases; another process may take its events over')
    }
  }

  #purgeQuietly (): void {
    this.purge().then((purged) => {
      if (purged.done + purged.dead > 0) this.#runtime?.logger.debug({ purged }, 'purged old events from the SQLite inbox')
    }).catch((error: unknown) => {
      this.#runtime?.logger.error({ err: error }, 'the SQLite inbox could not purge old events')
    })
  }
}

function toOutcome (row: EventRow): EventOutcome {
  const outcome: EventOutcome = {
    id: row.id,
    type: row.type,
    state: row.state,
    receivedAt: new Date(row.received_at),
    attempts: row.attempts,
    event: JSON.parse(row.event) as AnyEvent
  }
  if (row.last_error !== null) outcome.lastError = row.last_error
  if (row.finished_at !== null) outcome.finishedAt = new Date(row.finished_at)
  return outcome
}

/** A durable inbox in one SQLite file, for a receiver on one machine. */
export function sqliteInbox (options: SqliteInboxOptions): SqliteInbox {
  return new SqliteInbox(options)
}
