import type BetterSqlite3 from 'better-sqlite3'
import type { AnyEvent } from '../core/events.js'
import { assertNotStarted, type AcceptOutcome, type Inbox, type InboxHealth, type InboxRuntime, type PurgeOptions, type PurgeResult, type WaitingRuns } from '../core/inbox.js'
import { backlogLimit } from '../core/backlog-bound.js'
import { UnrefTimers } from '../core/unref-timers.js'
import { countsByState, type DeadLetterQuery, type EventOutcome, type OutcomeState } from '../core/outcome.js'
import { GroupCommit } from './group-commit.js'
import { acceptRow } from './accept.js'
import { SqliteBacklog } from './backlog.js'
import { DiskFloor } from './disk-floor.js'
import { InboxFiles } from './file-identity.js'
import { AnsweringIds } from './answering.js'
import { HealthTracker } from './health.js'
import { durabilityOf, openInboxFile, type Durability } from './open.js'
import { resolveSqliteOptions, type ResolvedSqliteOptions, type SqliteInboxOptions } from './options.js'
import { newOwner, reclaimFromDeadOwners, releaseDeadOwners } from './owner.js'
import { idKey, idLists } from './ids.js'
import { bodyToStore, toOutcome } from './rows.js'
import { EventRunner } from './runner.js'
import type { Statements } from './schema.js'
import { purgeCutoffs, purgeQuietly } from '../core/retention.js'
import { listEvents, waitingRuns, type EventQuery } from './event-list.js'
import type { FlowStore } from '../core/flow/store.js'
import { SqliteFlowStore } from './flow-store.js'
import { countMatching, replayDryRun, requeue, type ReplayFilter, type ReplayRun, type RequeueOptions } from './replay.js'
import { SqliteOrderingStore } from './ordering-store.js'
import { purgeEvents } from './purge.js'
import { walSyncOf } from './log-sync.js'
import { checkpointerFor, type Checkpointer } from './checkpointer.js'

export type { SqliteInboxOptions, StartupCheck } from './options.js'
export type { InboxHealth, PurgeOptions, PurgeResult } from '../core/inbox.js'
export { DurabilityUnknownError } from './write-errors.js'
export type { DeadLetterQuery, EventOutcome, OutcomeState } from '../core/outcome.js'

/** Admin writes (redrive, purge, the start's lease recovery) wait at least this long for a lock. */
const ADMIN_WAIT_MS = 5_000
/** close() waits at least this long for writes and WAL fsyncs in flight, whatever is left of its grace period. */
const CLOSE_SYNC_FLOOR_MS = 250

/**
 * A durable inbox in one SQLite file. A 2xx is answered once the event's row is committed and its WAL
 * fsynced (off the event loop: log-sync.ts); accepts that arrive together share one commit. The id is
 * the primary key, so dedupe and enqueue are one insert.
 * Events run under a lease renewed while handlers run; a dead process's events are taken over when it lapses.
 */
export class SqliteInbox implements Inbox {
  /** Events survive restarts; handlers are told apart by name. */
  readonly durable = true
  readonly #options: ResolvedSqliteOptions
  readonly #owner = newOwner()
  readonly #health = new HealthTracker()
  readonly #answering = new AnsweringIds()
  readonly #files: InboxFiles
  readonly #timers = new UnrefTimers()
  readonly #backlog: SqliteBacklog
  readonly #disk: DiskFloor
  #db: BetterSqlite3.Database | undefined
  #sql: Statements | undefined
  #writer: GroupCommit | undefined
  #runner: EventRunner | undefined
  #checkpointer: Checkpointer | undefined
  #runtime: InboxRuntime | undefined
  #flow: SqliteFlowStore | undefined
  #ordering: SqliteOrderingStore | undefined
  #closing = false
  #closed: Promise<void> | undefined

  constructor (options: SqliteInboxOptions) {
    this.#options = resolveSqliteOptions(options)
    const { db, sql } = openInboxFile(this.#options.path, this.#options.startupCheck, this.#options.acceptTimeoutMs)
    this.#db = db
    this.#sql = sql
    this.#files = new InboxFiles(this.#options.path)
    this.#backlog = new SqliteBacklog(() => this.#sql?.countPending.get() ?? 0, this.#options.pollIntervalMs)
    this.#disk = new DiskFloor(this.#options.path, this.#options.minFreeDiskBytes)
    // Checked before every accept's commit and after its fsync, so no 2xx is given for a row written
    // to a deleted or replaced file, and on a timer, so health() says so with no traffic.
    this.#writer = new GroupCommit(db, () => {
      this.#checkFiles()
      this.#files.assertPresent()
    }, walSyncOf(db, this.#options.path, (reason) => { this.#health.fileGone(reason) }))
  }

  start (runtime: InboxRuntime): void {
    assertNotStarted(this.#runtime !== undefined)
    const sql = this.#sql
    const writer = this.#writer
    if (sql === undefined || writer === undefined) throw new Error('sir-webhooks: this SQLite inbox was closed; create a new one')
    this.#runtime = runtime
    const runner = new EventRunner({ sql, writer, health: this.#health, owner: this.#owner, options: this.#options, runtime, backlog: this.#backlog, answering: this.#answering })
    this.#runner = runner
    this.#checkpointer = checkpointerFor(this.#db as BetterSqlite3.Database, this.#options.path, () => this.#runtime?.logger)
    this.#timers.every(this.#options.pollIntervalMs, () => { runner.pump() })
    this.#timers.every(Math.max(50, Math.floor(this.#options.leaseMs / 3)), () => { runner.renewLeases(); this.#flow?.renewSlots() })
    this.#timers.every(this.#options.purgeIntervalMs, () => { this.#purgeQuietly() })
    this.#timers.every(this.#options.pollIntervalMs, () => { this.#checkFiles(); this.#backlog.refreshIfDue(); void this.#disk.check().then(() => { this.#disk.report(this.#runtime?.logger) }) })
    // Events held by a dead predecessor on this host start now, the others once
    // their lease has expired.
    this.#reclaimFromDeadOwners().finally(() => { runner.wake() })
  }

  /** Events accepted and not yet done or dead, across every process sharing the file: as last counted, and kept since (backlog.ts). */
  get size (): number {
    try { return this.#backlog.size } catch { return 0 }
  }

  /** When the oldest event not yet done or dead was received, across every process sharing the file. */
  get oldestReceivedAt (): number | undefined {
    try { return this.#sql?.oldestPending.get() ?? undefined } catch { return undefined }
  }

  /**
   * Flow control kept in the file, shared by every process on it: rates, pauses
   * and each handler's `concurrency` (flow-store.ts). Asked for once, by the receiver.
   */
  flowStore (): FlowStore {
    this.#flow ??= new SqliteFlowStore({ sql: this.#open().flow, writer: this.#writer as GroupCommit, owner: this.#owner, leaseMs: this.#options.leaseMs,
      logger: () => this.#runtime?.logger, onResumed: () => { this.#runner?.wake() } })
    return this.#flow
  }

  /** Ordering kept in the file, one run of a key at a time across every process on it (ordering-store.ts). Asked for once, by the receiver. */
  orderingStore (): SqliteOrderingStore {
    return (this.#ordering ??= new SqliteOrderingStore({ db: this.#db!, sql: this.#open(), writer: this.#writer!, onUnblock: () => { this.#runner?.wake() } }))
  }

  /** Pending events before deliveries get 503 (the receiver's `maxQueueSize` too, when set). */
  get maxBacklog (): number { return this.#options.maxBacklog }

  /** Events whose handlers this process is running now. */
  get running (): number { return this.#runner?.running ?? 0 }

  /** Resolves once no event in the file is pending, in any process, and none runs here (backlog.ts). */
  async idle (): Promise<void> { await this.#backlog.whenEmpty(() => this.running, Math.min(20, this.#options.pollIntervalMs)) }

  /** Events in the file by state, across every process sharing it. */
  async counts (): Promise<Record<OutcomeState, number>> { return countsByState(this.#open().countByState.all()) }

  /**
   * `degraded` while claims or outcome writes fail for a reason other than a lock
   * held elsewhere (a damaged file, a full disk): deliveries then get 503, since
   * events accepted now could not run. Clears itself when they succeed again;
   * except once the file or its `-wal` was deleted or replaced, which only a
   * restart on a restored file mends.
   */
  health (): InboxHealth {
    const own = this.#health.report()
    const disk = this.#disk.reason()
    return disk === undefined ? own : { status: 'degraded', reasons: [...own.reasons, disk] }
  }

  /**
   * Records the event, its body exactly as received, in the next group commit.
   * Handlers start from the file, after the answer: `whenAnswered` and
   * `waitUntil` are for inboxes that run them in the request's own process.
   */
  accept (
    event: AnyEvent,
    receivedAt: number,
    _whenAnswered?: (callback: () => void) => void,
    _waitUntil?: (handlersFinished: Promise<void>) => void,
    rawBody?: Uint8Array
  ): AcceptOutcome | Promise<AcceptOutcome> {
    const writer = this.#writer
    const sql = this.#sql
    if (writer === undefined || sql === undefined || this.#closing || this.#health.degraded) return 'unavailable'
    const row = { id: idKey(event.id), type: event.type, body: bodyToStore(event, rawBody), receivedAt }
    // Under the disk floor nothing new fits; a duplicate still is one (acceptRow), so it is asked too.
    const limit = this.#disk.low ? 0 : backlogLimit(this.#options.maxBacklog, this.#runtime?.options)
    const ordering = this.#runtime?.ordering
    const placeOf = ordering === undefined ? undefined : () => ordering.refFor(event, receivedAt)
    const accepted = writer.write(() => acceptRow(sql, this.#backlog, row, limit, placeOf), { durable: true, deadline: Date.now() + this.#options.acceptTimeoutMs })
    this.#answering.track(event.id, accepted)
    return accepted.then((outcome) => {
      if (outcome === 'accepted') this.#runner?.wake()
      return outcome
    }, (error: unknown) => {
      // SQLITE_BUSY past acceptTimeoutMs, SQLITE_FULL, SQLITE_IOERR, a failed WAL fsync…: the row is
      // not committed (or not known to be on disk), so the sender must try again.
      this.#runtime?.logger.warn({ err: error, event: { id: event.id, type: event.type } }, 'the SQLite inbox could not record the event')
      return 'unavailable'
    })
  }

  async outcome (id: string): Promise<EventOutcome | undefined> {
    const row = this.#open().get.get(idKey(id))
    return row === undefined ? undefined : toOutcome(row)
  }

  async deadLetters (query: DeadLetterQuery = {}): Promise<EventOutcome[]> { return this.#open().deadLetters.all(query.limit ?? 100).map(toOutcome) }

  async events (query?: EventQuery): Promise<EventOutcome[]> { this.#open(); return listEvents(this.#db as BetterSqlite3.Database, query, toOutcome) }
  async waiting (): Promise<WaitingRuns[]> { this.#open(); return waitingRuns(this.#db as BetterSqlite3.Database) }

  // Replay by filter (replay.ts): counted, queued again in batches of 500 rows per write, or run dry.
  async countMatching (filter: ReplayFilter): Promise<number> { this.#open(); return countMatching(this.#db!, filter) }
  async requeue (filter: ReplayFilter, options?: RequeueOptions): Promise<number> { this.#open(); return await requeue(this.#db!, filter, async (run) => await this.#adminWrite(run), () => this.#now(), () => this.#runner?.wake(), (events) => { this.#backlog.added(events) }, options?.max) }
  async replayDryRun (filter: ReplayFilter, limit: number): Promise<ReplayRun[]> { this.#open(); return await replayDryRun(this.#db!, this.#runtime, filter, limit) }

  async redrive (id: string): Promise<boolean> {
    const sql = this.#open()
    const changed = await this.#adminWrite(() => this.#backlog.added(sql.redrive.run({ id: idKey(id), now: this.#now() }).changes) === 1)
    if (changed) this.#runner?.wake()
    return changed
  }

  /**
   * Deletes done events past `retentionSeconds` and dead ones past
   * `deadLetterRetentionSeconds`; with `before`, every done and dead event that
   * finished before it. Pending events are never purged.
   */
  async purge (options: PurgeOptions = {}): Promise<PurgeResult> {
    const cutoffs = purgeCutoffs(this.#now(), options, this.#options, this.#runtime?.options)
    return await purgeEvents(this.#open(), cutoffs, options.dryRun === true, async (run) => await this.#adminWrite(run))
  }

  /** How the inbox's own connection commits accepts: what a 2xx stands on. For operators and tests; the values are SQLite's pragma names. */
  durability (): Durability { return durabilityOf(this.#db) }

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
    const deadline = Date.now() + graceMs
    const db = this.#db
    const sql = this.#sql
    const writer = this.#writer
    if (db === undefined || sql === undefined || writer === undefined) return
    this.#closing = true
    const runner = this.#runner
    await runner?.stop(graceMs)
    this.#timers.clear()
    this.#flow?.close()
    const running = runner?.runningIds() ?? idLists([])
    try {
      const released = writer.write(() => sql.releaseLeases.run({ owner: this.#owner, ...running }), { durable: false, deadline: Date.now() + ADMIN_WAIT_MS })
        .catch((error: unknown) => { this.#runtime?.logger.warn({ err: error }, 'close() could not release the leases of events this process did not start; they run once the lease expires') })
      // An fsync that never returns (a hung disk) must not hang the shutdown: past the grace period (and a floor, so a
      // healthy sync in flight is not cut short), the accepts still waiting for it are answered 503.
      if (!await writer.settled(Math.max(CLOSE_SYNC_FLOOR_MS, deadline - Date.now()))) this.#runtime?.logger.warn('close() gave up waiting for the SQLite write-ahead log\'s fsync: the deliveries waiting for it were answered 503')
      await released
    } finally {
      writer.close()
      this.#db = undefined
      this.#sql = undefined
      this.#writer = undefined
      db.close()
      await this.#checkpointer?.stop()
    }
    if (runner !== undefined && runner.running > 0) {
      this.#runtime?.logger.warn({ events: runner.running }, 'close() ran out of time; unfinished events stay in the SQLite inbox and run again once their lease expires')
    }
  }

  /** Events and slots held by a dead predecessor on this host are freed now (owner.ts). */
  async #reclaimFromDeadOwners (): Promise<void> {
    const sql = this.#open()
    await reclaimFromDeadOwners(async () => await this.#adminWrite(() => releaseDeadOwners(sql, this.#now())), this.#runtime?.logger)
  }

  async #adminWrite<T> (run: () => T): Promise<T> {
    const writer = this.#writer
    if (writer === undefined) this.#open()
    return await (writer as GroupCommit).write(run, { durable: true, deadline: Date.now() + Math.max(this.#options.acceptTimeoutMs, ADMIN_WAIT_MS) })
  }

  /** Queries on a closed inbox throw: an empty answer would read as "no such event". */
  #open (): Statements {
    if (this.#sql === undefined) throw new Error('sir-webhooks: this SQLite inbox is closed; open a new one on the same path to query it')
    return this.#sql
  }

  #now (): number { return (this.#runtime?.options.clock ?? Date.now)() }

  #checkFiles (): void {
    const gone = this.#files.check()
    if (gone !== undefined && this.#health.fileGone(gone)) {
      this.#runtime?.logger.error({ reason: gone }, 'the SQLite inbox file was deleted or replaced while in use; deliveries get 503 until the receiver is restarted, and events accepted since it happened are lost with it')
    }
  }

  #purgeQuietly (): void { purgeQuietly(async () => await this.purge(), this.#runtime?.logger, 'SQLite') }
}

/** A durable inbox in one SQLite file, for a receiver on one machine. */
export function sqliteInbox (options: SqliteInboxOptions): SqliteInbox {
  return new SqliteInbox(options)
}
