import type BetterSqlite3 from 'better-sqlite3'
import type { LogSync } from './log-sync.js'
import { DurabilityUnknownError, isBusy, StoreBusyError, SyncTimeoutError } from './write-errors.js'

export { DurabilityUnknownError, isBusy, StoreBusyError, SyncTimeoutError } from './write-errors.js'

/**
 * How long one attempt to take the write lock may hold the event loop: SQLite's
 * busy handler sleeps synchronously, so the rest of the wait is taken in short
 * asynchronous retries. Small enough that no store wait freezes the process.
 */
export const BUSY_WAIT_MS = 10
const RETRY_DELAYS_MS = [2, 5, 10, 20, 25]
/**
 * Transactions without a durable job that may run in one turn of the event loop
 * before the rest waits for the next turn, so that handlers finishing in a tight
 * loop cannot starve the sockets. With 4 ms, no-op handlers fell behind 50
 * senders and the default maxQueueSize filled (23 308 of ~67 000 answers 503 on
 * a quiet VM); with 12 ms one run kept up (6 791/s, 0 non-2xx), another did not
 * (7 464/s, 2 615 non-2xx): docs/performance.md.
 */
const ROUNDS_PER_TURN = 128
const TURN_BUDGET_MS = 12

export interface WriteOptions {
  /** Committed with an fsync (`synchronous=FULL`): an accept, which a 2xx stands on. */
  durable: boolean
  /** Epoch ms past which a job still waiting for the lock is given up with `StoreBusyError`. */
  deadline: number
}

/** One transaction's worth of jobs; `durable` when it commits with an fsync. */
export interface Batch {
  readonly durable: boolean
}

interface Job {
  run: (batch: Batch) => unknown
  durable: boolean
  deadline: number
  /** Its batch failed at COMMIT, which names no culprit: it is retried in a transaction of its own. */
  alone?: boolean
  resolve: (value: unknown) => void
  reject: (error: unknown) => void
}

/** The least an accept waits for its fsync, whatever is left of its deadline. */
const MIN_SYNC_WAIT_MS = 1_000

/**
 * Group commit: the writes asked for in one turn of the event loop share one
 * `BEGIN IMMEDIATE` transaction, so the accepts that arrive together cost one
 * fsync instead of one each (run off the event loop when `syncLog` is given). Accepts wait for the end of the turn (setImmediate,
 * after every socket that was ready has been read); the handlers' writes (claims,
 * outcomes) commit without an fsync as soon as the current microtasks are done,
 * a bounded number of times per turn. A locked file is retried asynchronously
 * until each job's deadline: better-sqlite3 waits for locks synchronously, and
 * only `BUSY_WAIT_MS` of that wait is spent blocking.
 */
export class GroupCommit {
  readonly #db: BetterSqlite3.Database
  #jobs: Job[] = []
  #immediate: NodeJS.Immediate | undefined
  #microtaskQueued = false
  #retry: NodeJS.Timeout | undefined
  #retries = 0
  #roundsThisTurn = 0
  #turnStartedAt = 0
  #synchronous: 'FULL' | 'NORMAL' = 'FULL'
  #idle: Array<() => void> = []
  #closed = false
  readonly #checkDurable: () => void
  readonly #syncLog: LogSync | undefined
  /** Durable batches committed and waiting for their log sync (settled() waits for them too), each with how to give it up. */
  readonly #syncing = new Map<Promise<void>, (reason: Error) => void>()

  /**
   * `checkDurable` runs before each batch with an accept opens its transaction;
   * what it throws fails the batch. With `syncLog` (log-sync.ts), such a batch
   * commits with `synchronous=NORMAL` and its jobs settle once `syncLog` has made
   * it durable, off the event loop, and `checkDurable` has run again: the file
   * may have been replaced while the sync ran, and then the durable jobs fail
   * with what it throws. Without `syncLog`, it commits with `synchronous=FULL`.
   */
  constructor (db: BetterSqlite3.Database, checkDurable: () => void = () => {}, syncLog?: LogSync) {
    this.#db = db
    this.#checkDurable = checkDurable
    this.#syncLog = syncLog
  }

  /** Runs `run` inside the next batch's transaction; resolves once it is committed. */
  write<T> (run: (batch: Batch) => T, options: WriteOptions): Promise<T> {
    if (this.#closed) return Promise.reject(new Error('sir-webhooks: this SQLite inbox is closed'))
    return new Promise<T>((resolve, reject) => {
      this.#jobs.push({ run, durable: options.durable, deadline: options.deadline, resolve: resolve as (value: unknown) => void, reject })
      this.#schedule(options.durable)
    })
  }

  /**
   * Resolves once every job asked for so far has been committed or given up.
   * With `withinMs` (close()), what is still waiting then is given up, so that a
   * hung disk cannot hang the shutdown: jobs not committed are refused, and those
   * committed and waiting for their sync fail as DurabilityUnknownError (an
   * accept's delivery gets 503). Resolves false when it gave up.
   */
  async settled (withinMs?: number): Promise<boolean> {
    const all = (async () => {
      if (this.#jobs.length > 0) await new Promise<void>((resolve) => { this.#idle.push(resolve) })
      await Promise.all([...this.#syncing.keys()])
      return true
    })()
    if (withinMs === undefined) return await all
    let timer: NodeJS.Timeout | undefined
    const done = await Promise.race([all, new Promise<false>((resolve) => { timer = setTimeout(() => { resolve(false) }, withinMs) })])
    clearTimeout(timer)
    if (!done) this.#abandon(new Error(`the SQLite inbox closed after waiting ${withinMs} ms for this write and its fsync: the disk is slow or hung`))
    return done
  }

  #abandon (reason: Error): void {
    clearTimeout(this.#retry)
    clearImmediate(this.#immediate)
    this.#retry = this.#immediate = undefined
    for (const job of this.#jobs.splice(0)) job.reject(reason)
    for (const giveUp of this.#syncing.values()) giveUp(reason)
    this.#syncing.clear()
    this.#afterFlush()
  }

  /** Later writes are refused; call once `settled()` has resolved, before closing the database. */
  close (): void {
    this.#closed = true
    this.#syncLog?.close()
  }

  #schedule (durable: boolean): void {
    if (this.#retry !== undefined || this.#immediate !== undefined) return
    if (!durable && !this.#microtaskQueued && this.#mayRunAnotherRound()) {
      this.#microtaskQueued = true
      queueMicrotask(() => {
        this.#microtaskQueued = false
        this.#roundsThisTurn++
        this.#flush(false)
      })
      return
    }
    this.#immediate = setImmediate(() => {
      this.#immediate = undefined
      this.#roundsThisTurn = 0
      this.#turnStartedAt = performance.now()
      this.#flush(true)
    })
  }

  #mayRunAnotherRound (): boolean {
    if (this.#roundsThisTurn === 0) this.#turnStartedAt = performance.now()
    return this.#roundsThisTurn < ROUNDS_PER_TURN && performance.now() - this.#turnStartedAt < TURN_BUDGET_MS
  }

  /** `withDurable`: false in a microtask round, which leaves accepts for the end of the turn. */
  #flush (withDurable: boolean): void {
    const batch = this.#take(withDurable)
    if (batch.length === 0) return this.#afterFlush()
    const durable = batch.some((job) => job.durable)
    try {
      if (durable) this.#checkDurable()
      this.#setSynchronous(durable && this.#syncLog === undefined ? 'FULL' : 'NORMAL')
      this.#db.exec('BEGIN IMMEDIATE')
    } catch (error) {
      if (isBusy(error)) return this.#waitForLock(batch, error)
      for (const job of batch) job.reject(error)
      return this.#afterFlush()
    }
    this.#retries = 0
    this.#commit(batch, durable)
    // Back to FULL between batches: what the connection reports is what an accept gets (with syncLog: the same, synced off the loop).
    this.#setSynchronous('FULL')
    this.#afterFlush()
  }

  /** The next batch: the jobs waiting (accepts only with `withDurable`), or one job to be retried alone. */
  #take (withDurable: boolean): Job[] {
    const eligible = (job: Job): boolean => withDurable || !job.durable
    const first = this.#jobs.find(eligible)
    if (first?.alone === true) {
      this.#jobs = this.#jobs.filter((job) => job !== first)
      return [first]
    }
    const batch = this.#jobs.filter((job) => eligible(job) && job.alone !== true)
    this.#jobs = this.#jobs.filter((job) => !batch.includes(job))
    return batch
  }

  /**
   * Runs the jobs in the open transaction and commits. One bad job must not cost
   * its batch-mates their write: an error that aborts only its statement (a
   * constraint) fails only its job; one that ends the whole transaction (a full
   * disk, an I/O error, a row too large for the space left) fails its job, and the
   * others go back to the queue for the next transaction. A failed COMMIT names no
   * job, so each of its jobs is retried once in a transaction of its own.
   */
  #commit (batch: Job[], durable: boolean): void {
    const results: Array<{ ok: true, value: unknown } | { ok: false, error: unknown }> = []
    const context: Batch = { durable }
    for (const job of batch) {
      try {
        results.push({ ok: true, value: job.run(context) })
      } catch (error) {
        if (!this.#db.inTransaction) {
          job.reject(error)
          this.#jobs = [...batch.filter((other) => other !== job), ...this.#jobs]
          return
        }
        results.push({ ok: false, error })
      }
    }
    try {
      this.#db.exec('COMMIT')
    } catch (error) {
      if (this.#db.inTransaction) this.#db.exec('ROLLBACK')
      if (batch.length === 1) {
        batch[0]!.reject(error)
        return
      }
      for (const job of batch) job.alone = true
      this.#jobs = [...batch, ...this.#jobs]
      return
    }
    /**
     * `failure` fails the durable jobs, not known to be on disk: a failed or late sync (DurabilityUnknownError: an
     * accept's delivery gets 503, its retry is a duplicate; an admin write learns it happened), or a file replaced
     * meanwhile (`gone`: that error). A job whose own statement failed gets its error; `late` leaves the others waiting.
     */
    const settle = (failure?: unknown, how: 'unknown' | 'gone' | 'late' = 'unknown'): void => {
      batch.forEach((job, index) => {
        const result = results[index]!
        if (how === 'late' && !job.durable) return
        if (!result.ok) job.reject(result.error)
        else if (failure === undefined || !job.durable) job.resolve(result.value)
        else job.reject(how === 'gone' ? failure : new DurabilityUnknownError(failure, result.value))
      })
    }
    if (!durable || this.#syncLog === undefined) return settle()
    // A disk that hangs must not hang the deliveries: past its deadline (at least MIN_SYNC_WAIT_MS, so that
    // acceptTimeoutMs 0, "no wait for the lock", still lets an fsync finish) an accept gets 503; its row may
    // reach the disk later, and a retry, answered only after a sync that covers it, then says duplicate.
    const deadline = Math.min(...batch.filter((job) => job.durable).map((job) => job.deadline))
    const late = setTimeout(() => { settle(new SyncTimeoutError(), 'late') }, Math.max(MIN_SYNC_WAIT_MS, deadline - Date.now()))
    // The whole batch waits, claims included: rows it claims start after the 2xx of the accepts beside them.
    // The frames went to the file SQLite had open: if the path names another file now, no 2xx stands on them.
    const synced = this.#syncLog.sync().then(() => {
      try { this.#checkDurable() } catch (error) { return settle(error, 'gone') }
      settle()
    }, (error: unknown) => { settle(error ?? new Error('the SQLite inbox could not sync its log')) })
      .finally(() => { clearTimeout(late); this.#syncing.delete(synced) })
    this.#syncing.set(synced, (reason) => { clearTimeout(late); settle(reason) })
  }

  /** The lock is held elsewhere: jobs past their deadline give up, the rest try again shortly. */
  #waitForLock (batch: Job[], error: unknown): void {
    const now = Date.now()
    const waiting: Job[] = []
    for (const job of batch) {
      if (job.deadline <= now) job.reject(new StoreBusyError(error))
      else waiting.push(job)
    }
    this.#jobs = [...waiting, ...this.#jobs]
    if (this.#jobs.length === 0) return this.#afterFlush()
    const earliest = Math.min(...this.#jobs.map((job) => job.deadline))
    const delay = Math.max(0, Math.min(RETRY_DELAYS_MS[Math.min(this.#retries, RETRY_DELAYS_MS.length - 1)]!, earliest - now))
    this.#retries++
    this.#retry = setTimeout(() => {
      this.#retry = undefined
      this.#flush(true)
    }, delay)
  }

  #afterFlush (): void {
    if (this.#jobs.length > 0) {
      if (this.#retry === undefined) this.#schedule(this.#jobs.some((job) => job.durable))
      return
    }
    const idle = this.#idle
    this.#idle = []
    for (const resolve of idle) resolve()
  }

  /**
   * Only accepts need their commit on disk before the answer. A claim or an
   * outcome lost to a power cut means the event runs again, as after any crash;
   * and the next durable commit syncs the log with everything before it.
   */
  #setSynchronous (level: 'FULL' | 'NORMAL'): void {
    if (this.#synchronous === level) return
    this.#db.pragma(`synchronous = ${level}`)
    this.#synchronous = level
  }
}
