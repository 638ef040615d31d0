import type { Pool } from 'pg'
import type { AnyEvent } from '../core/events.js'
import { UnrefTimers } from '../core/unref-timers.js'
import { assertNotStarted, type AcceptOutcome, type Inbox, type InboxHealth, type InboxRuntime, type PurgeOptions, type PurgeResult } from '../core/inbox.js'
import { backlogLimit } from '../core/backlog-bound.js'
import type { DeadLetterQuery, EventOutcome, OutcomeState } from '../core/outcome.js'
import { purgeQuietly } from '../core/retention.js'
import { Backlog } from './backlog.js'
import { PlannerStats } from './planner-stats.js'
import { Candidates } from './candidates.js'
import { PostgresFlowStore } from './flow-store.js'
import { PostgresOrderingStore } from './ordering-store.js'
import { loadPg } from './driver.js'
import { idleLimitInSession, resolvePostgresOptions, type PostgresInboxOptions, type ResolvedPostgresOptions } from './options.js'
import { queriesFor, type Queries } from './queries.js'
import { startParts, stopParts, type Running } from './parts.js'
import { Records } from './records.js'
import type { PostgresHandlerExtra } from './run-event.js'
import { checkSchema, migrate, SchemaError } from './schema.js'
import { redactedStoreError } from './store-errors.js'
import { StoreHealth } from './store-health.js'
import { listEvents, type EventQuery } from './event-list.js'
import { countMatching, replayDryRun, requeue, type ReplayEnvironment, type ReplayFilter, type ReplayRun, type RequeueOptions } from './replay.js'

export type { PostgresInboxOptions } from './options.js'
export type { PostgresHandlerExtra } from './run-event.js'
export type { DeadLetterQuery, EventOutcome, OutcomeState } from '../core/outcome.js'
export { migrationSql, SCHEMA_VERSION } from './schema.js'

export type { PurgeOptions, PurgeResult } from '../core/inbox.js'

/**
 * A durable inbox in PostgreSQL, with exactly-once effects for what handlers
 * write through `transaction`. A 2xx is answered once the event's row is
 * committed; deliveries arriving together share one INSERT and one commit. Each
 * event runs in one transaction that holds its row lock (the claim) and, per
 * handler, a savepoint with that handler's writes and its success record.
 * Instances sharing the database share dedupe and work; LISTEN/NOTIFY wakes
 * them, polling is the fallback.
 */
export class PostgresInbox implements Inbox<PostgresHandlerExtra> {
  readonly durable = true
  /** Types the handler context: `transaction` is there for this inbox's handlers. Never set. */
  declare readonly handlerContext?: PostgresHandlerExtra
  readonly #options: ResolvedPostgresOptions
  readonly #sql: Queries
  readonly #timers = new UnrefTimers()
  #runtime: InboxRuntime<PostgresHandlerExtra> | undefined
  #running: Running | undefined
  /** A pool of the inbox's own for queries before start (an admin script), ended on close. */
  #queryPool: Pool | undefined
  #ready = false
  #closing = false
  #closed: Promise<void> | undefined
  readonly #health = new StoreHealth()
  readonly #backlog: Backlog
  readonly #records: Records
  #wakeScheduled = false
  readonly #candidates = new Candidates()
  readonly #flow: PostgresFlowStore
  #flowOffered = false
  #ordering: PostgresOrderingStore | undefined
  /** Resolves once the tables are there: a pause() before then waits for it. */
  readonly #readyOnce: { promise: Promise<void>, resolve: () => void }

  constructor (options: PostgresInboxOptions) {
    this.#options = resolvePostgresOptions(options)
    // On the sessions of the inbox's own pool (parts.ts), else in each transaction.
    const idleLimitPerTransaction = idleLimitInSession(this.#options) ? 0 : this.#options.idleInTransactionTimeoutMs
    this.#sql = queriesFor(this.#options.schema, this.#options.handlerSynchronousCommit, idleLimitPerTransaction)
    const plannerStats = new PlannerStats(async () => await this.#pool(), this.#sql, () => this.#runtime?.logger)
    this.#backlog = new Backlog(async () => {
      const { rows } = await (await this.#pool()).query<{ pending: number, oldest: string | null }>(this.#sql.countPending)
      const oldest = rows[0]?.oldest
      return { pending: rows[0]?.pending ?? 0, oldestReceivedAt: oldest === null || oldest === undefined ? undefined : Number(oldest) }
    }, (error) => { this.#health.failed(redactedStoreError(error)) }, (pending) => { plannerStats.counted(pending) })
    let resolveReady = (): void => {}
    this.#readyOnce = { promise: new Promise((resolve) => { resolveReady = resolve }), resolve: () => { resolveReady() } }
    this.#flow = new PostgresFlowStore({
      schema: this.#options.schema,
      wakeChannel: this.#sql.wakeChannel,
      control: () => this.#running?.control,
      // The CLI's inbox is never started: its pause and resume go through the query pool.
      unstarted: () => this.#runtime === undefined ? this.#pool() : undefined,
      ready: this.#readyOnce.promise,
      onError: (error) => { this.#runtime?.logger.warn({ err: redactedStoreError(error) }, 'flow control could not read or release its state in Postgres; it is tried again') },
      onWake: () => { this.#wakeToScan() }
    })
    this.#records = new Records({ sql: this.#sql, options: this.#options, pool: async () => await this.#pool(), now: () => this.#now(), receiver: () => this.#runtime?.options })
  }

  /** pg imported (start's first step), no round trip; a failure is start()'s to report. */
  async loaded (): Promise<void> { await loadPg().catch(() => {}) }

  async start (runtime: InboxRuntime<PostgresHandlerExtra>): Promise<void> {
    assertNotStarted(this.#runtime !== undefined)
    this.#runtime = runtime
    this.#running = await startParts({
      options: this.#options,
      sql: this.#sql,
      runtime,
      health: this.#health,
      backlog: this.#backlog,
      candidates: this.#candidates,
      timers: this.#timers,
      now: () => this.#now(),
      orderingSql: this.#ordering?.sql,
      orderingAccepted: () => { this.#ordering?.refreshSoon() },
      wake: () => { this.#wake() },
      wakeToScan: () => { this.#wakeToScan() }
    })
    await this.#prepare()
  }

  /**
   * Tables, LISTEN, timers. A store that cannot be reached is tried again every
   * poll interval, deliveries getting 503 meanwhile; a schema this version cannot
   * use is an error that start() throws.
   */
  async #prepare (): Promise<void> {
    const running = this.#running
    if (running === undefined || this.#closing) return
    try {
      const client = await running.pool.connect()
      try {
        if (this.#options.migrate) await migrate(client, this.#options.schema)
        else await checkSchema(client, this.#options.schema)
      } finally {
        client.release()
      }
      await this.#backlog.refresh()
      // Onto a large backlog the workers start with one slot (core/accept-priority.ts).
      running.priority.startingOnto(this.#backlog.size)
    } catch (error) {
      if (error instanceof SchemaError) throw error
      const err = redactedStoreError(error)
      this.#health.failed(err)
      this.#runtime?.logger.error({ err }, 'the Postgres inbox cannot reach its database; deliveries get 503 until it can')
      this.#timers.after(this.#options.pollIntervalMs, () => { void this.#prepare().catch((schemaError: unknown) => { this.#health.failed(schemaError) }) })
      return
    }
    if (this.#flowOffered) running.control.listenAlso(this.#flow.channel, () => { this.#flow.heard() })
    await running.control.open()
    if (this.#flowOffered) {
      // Before any claim: a receiver started while every receiver is paused must not run a batch first.
      await this.#flow.refresh().catch((error: unknown) => { this.#runtime?.logger.warn({ err: redactedStoreError(error) }, 'flow control could not read the pause state yet; it is tried again') })
      this.#flow.start()
    }
    this.#ready = true
    this.#readyOnce.resolve()
    this.#health.succeeded()
    this.#timers.every(this.#options.pollIntervalMs, () => { this.#poll() })
    this.#timers.every(this.#options.purgeIntervalMs, () => { this.#purgeQuietly() })
    this.#wake()
  }

  /**
   * Events not yet done or dead, across every instance: counted at each poll,
   * plus those accepted here since and minus those finished here (backlog.ts).
   */
  get size (): number {
    return this.#backlog.size
  }

  /** When the oldest pending event was received, as of the last poll (and this process's accepts since). */
  get oldestReceivedAt (): number | undefined {
    return this.#backlog.oldestReceivedAt
  }

  /** Flow control shared by every receiver on the schema: rate, concurrency and pause (flow-store.ts). */
  flowStore (): PostgresFlowStore {
    this.#flowOffered = true
    return this.#flow
  }

  /** Ordering shared by every receiver on the schema: a key's run holds its row lock (ordering-store.ts). */
  orderingStore (): PostgresOrderingStore {
    this.#ordering ??= new PostgresOrderingStore({ schema: this.#options.schema, pool: async () => await this.#pool(), wakeChannel: this.#sql.wakeChannel, logger: () => this.#runtime?.logger })
    return this.#ordering
  }

  /** Pending events before deliveries get 503 (the receiver's `maxQueueSize` too, when set). */
  get maxBacklog (): number { return this.#options.maxBacklog }

  accept (event: AnyEvent, receivedAt: number, _whenAnswered?: unknown, _waitUntil?: unknown, rawBody?: Uint8Array): AcceptOutcome | Promise<AcceptOutcome> {
    const running = this.#running
    if (running === undefined || !this.#ready || this.#closing) return 'unavailable'
    // The delivery's deadline starts now, a recount of a full backlog included.
    const calledAt = Date.now()
    const fits = this.#backlog.admits(backlogLimit(this.#options.maxBacklog, this.#runtime?.options), this.#options.acceptTimeoutMs)
    if (fits === true) return running.accepts.add(event, receivedAt, rawBody, calledAt)
    if (fits === false) return 'full'
    return fits.then((counted) => counted ? running.accepts.add(event, receivedAt, rawBody, calledAt) : 'full')
  }

  health (): InboxHealth {
    return this.#health.report({ controlError: this.#running?.control.lastError, starting: this.#running !== undefined && !this.#ready && !this.#closing })
  }

  /** The event's record, with `body` as received; undefined for an id the table does not hold. */
  async outcome (id: string): Promise<EventOutcome | undefined> {
    return await this.#records.outcome(id)
  }

  async deadLetters (query: DeadLetterQuery = {}): Promise<EventOutcome[]> {
    return await this.#records.deadLetters(query)
  }

  async events (query?: EventQuery): Promise<EventOutcome[]> { return await listEvents(await this.#pool(), this.#options.schema, query) }

  async redrive (id: string): Promise<boolean> {
    const revived = await this.#records.redrive(id)
    if (revived) this.#backlog.added(1)
    return revived
  }

  // Replay by filter (replay.ts): counted, queued again in batches of 500 rows per statement, or run dry and rolled back.
  async countMatching (filter: ReplayFilter): Promise<number> { return await countMatching(this.#replayEnv(), filter) }
  async requeue (filter: ReplayFilter, options?: RequeueOptions): Promise<number> { return await requeue(this.#replayEnv(), filter, (count) => { this.#backlog.added(count) }, options?.max) }
  async replayDryRun (filter: ReplayFilter, limit: number): Promise<ReplayRun[]> { return await replayDryRun(this.#replayEnv(), this.#runtime, filter, limit) }
  #replayEnv (): ReplayEnvironment { return { pool: async () => await this.#pool(), schema: this.#options.schema, wakeChannel: this.#sql.wakeChannel, now: () => this.#now() } }

  /** Events by state, for operators (`sir-webhooks inbox stats`). */
  async counts (): Promise<Record<OutcomeState, number>> { return await this.#records.counts() }

  /** Deletes done events past `retentionSeconds`, dead ones past `deadLetterRetentionSeconds` (or both finished before `before`); never pending ones. */
  async purge (options: PurgeOptions = {}): Promise<PurgeResult> {
    return await this.#records.purge(options)
  }

  /**
   * Stops taking work and waits up to `graceMs` for running events (parts.ts,
   * `stopParts`). Dead-letters nothing: what is unfinished stays pending. Safe to call more than once.
   */
  close (graceMs: number): Promise<void> {
    this.#closed ??= this.#close(graceMs)
    return this.#closed
  }

  async #close (graceMs: number): Promise<void> {
    this.#closing = true
    await this.#queryPool?.end()
    if (this.#running === undefined) return
    await stopParts(this.#running, graceMs, this.#runtime?.logger, () => {
      this.#timers.clear()
      this.#flow.close()
      this.#ordering?.close()
    })
  }

  /**
   * The pool queries use: the running one, or before start (an admin script that
   * only reads outcomes) the app's pool or one made for queries. After close they
   * throw: an empty answer would read as "no such event".
   */
  async #pool (): Promise<Pool> {
    if (this.#closed !== undefined) throw new Error('sir-webhooks: this Postgres inbox is closed; query a new one on the same database')
    if (this.#running !== undefined) return this.#running.pool
    if (this.#options.pool !== undefined) return this.#options.pool
    const pg = await loadPg()
    this.#queryPool ??= new pg.Pool({ connectionString: this.#options.connectionString, max: 2 })
    return this.#queryPool
  }

  #now (): number {
    return (this.#runtime?.options.clock ?? Date.now)()
  }

  /** setImmediate: an accept's 2xx is written before any handler starts. */
  #wake (): void {
    if (this.#wakeScheduled || !this.#ready) return
    this.#wakeScheduled = true
    setImmediate(() => {
      this.#wakeScheduled = false
      const running = this.#running
      // Without the control connection no attempt can be counted, so no event can
      // start: claiming would only fail and log. Its reconnection wakes the workers.
      // Every handler paused: nothing to claim. resume() (here or elsewhere) wakes them.
      if (running?.control.connected === true && !this.#flow.pauseState().all) running.workers.wake()
    })
  }

  /** Wakes the workers to look in the table, not only at this process's accepts. */
  #wakeToScan (): void {
    this.#candidates.wantScan()
    this.#wake()
  }

  #poll (): void {
    this.#wakeToScan()
    void this.#backlog.refresh()
    this.#ordering?.refresh()
  }

  #purgeQuietly (): void {
    purgeQuietly(async () => await this.purge().catch((error: unknown) => { throw redactedStoreError(error) }), this.#runtime?.logger, 'Postgres')
    // Keys idle for as long as event ids are remembered.
    this.#ordering?.purgeQuietly(this.#now() - (this.#runtime?.options.dedupe.ttlSeconds ?? 0) * 1000)
  }
}

/** A durable inbox in PostgreSQL, shared by every receiver on the database, with exactly-once database effects. */
export function postgresInbox (options: PostgresInboxOptions): PostgresInbox {
  return new PostgresInbox(options)
}
