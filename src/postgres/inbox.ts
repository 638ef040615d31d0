import type { Pool } from 'pg'
import type { AnyEvent } from '../core/events.js'
import { wakeOrTimeout } from '../core/timeouts.js'
import { UnrefTimers } from '../core/unref-timers.js'
import { assertNotStarted, type AcceptOutcome, type Inbox, type InboxHealth, type InboxRuntime, type PurgeOptions, type PurgeResult } from '../core/inbox.js'
import { defaults } from '../core/options.js'
import { countsByState, type DeadLetterQuery, type EventOutcome, type OutcomeState } from '../core/outcome.js'
import { purgeCutoffs, purgeQuietly } from '../core/retention.js'
import { Candidates } from './candidates.js'
import { ControlConnection } from './control-connection.js'
import { loadPg } from './driver.js'
import { GroupCommit, MAX_IN_FLIGHT } from './group-commit.js'
import { resolvePostgresOptions, type PostgresInboxOptions, type ResolvedPostgresOptions } from './options.js'
import { queriesFor, toOutcome, type EventRow, type Queries } from './queries.js'
import type { PostgresHandlerExtra } from './run-event.js'
import { checkSchema, migrate, SchemaError } from './schema.js'
import { StoreHealth } from './store-health.js'
import { WakeNotifier } from './notifier.js'
import { Workers } from './workers.js'
import { listEvents, type EventQuery } from './event-list.js'

export type { PostgresInboxOptions } from './options.js'
export type { PostgresHandlerExtra } from './run-event.js'
export type { DeadLetterQuery, EventOutcome, OutcomeState } from '../core/outcome.js'
export { migrationSql, SCHEMA_VERSION } from './schema.js'

export type { PurgeOptions, PurgeResult } from '../core/inbox.js'

interface Running {
  pool: Pool
  ownsPool: boolean
  control: ControlConnection
  accepts: GroupCommit
  workers: Workers
  notifier: WakeNotifier
}

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
  #pending = 0
  readonly #health = new StoreHealth()
  #wakeScheduled = false
  readonly #candidates = new Candidates()

  constructor (options: PostgresInboxOptions) {
    this.#options = resolvePostgresOptions(options)
    this.#sql = queriesFor(this.#options.schema, this.#options.handlerSynchronousCommit)
  }

  async start (runtime: InboxRuntime<PostgresHandlerExtra>): Promise<void> {
    assertNotStarted(this.#runtime !== undefined)
    this.#runtime = runtime
    const pg = await loadPg()
    const options = this.#options
    const { concurrency } = runtime.options
    const pool = options.pool ?? new pg.Pool({
      connectionString: options.connectionString,
      max: concurrency + MAX_IN_FLIGHT + 1,
      connectionTimeoutMillis: options.acceptTimeoutMs
    })
    // An idle client's error (the server restarted) is emitted on the pool; unheard, it would crash the process.
    pool.on('error', (error) => { this.#health.failed(error) })
    const poolMax = pool.options.max ?? 10
    const slots = Math.max(1, Math.min(concurrency, poolMax - MAX_IN_FLIGHT))
    if (slots < concurrency) {
      runtime.logger.warn({ poolMax, concurrency, handlersAtOnce: slots }, `the pg pool is too small for "concurrency": the Postgres inbox runs ${slots} events at once, leaving ${MAX_IN_FLIGHT} clients for accepts; give the pool max: concurrency + ${MAX_IN_FLIGHT + 1}`)
    }
    const notifier = new WakeNotifier(pool, this.#sql.notifyOthers, () => !runtime.hasHandlers, runtime.logger)
    const control = new ControlConnection(
      // Named, so that an operator can tell it in pg_stat_activity.
      () => new pg.Client({ ...(options.connectionString !== undefined ? { connectionString: options.connectionString } : pool.options), application_name: `sir-webhooks control ${options.schema}` }),
      this.#sql.wakeChannel, this.#sql.countAttempts, (payload) => {
        // Another instance accepted, a redrive, or a reconnection: what is due is in the table.
        const request = notifier.heard(payload)
        if (request === 'now') {
          this.#wakeToScan()
        } else if (request === 'after own accepts') {
          this.#candidates.othersAccepted()
          this.#wake()
        }
      }, runtime.logger)
    const accepts = new GroupCommit(pool, this.#sql, options, {
      committed: (inserted) => {
        this.#pending += inserted.size
        this.#health.succeeded()
        if (inserted.size === 0) return
        // A process without handlers would only pile the ids up; its poll scans once it has some.
        if (runtime.hasHandlers) this.#candidates.addAccepted(inserted)
        this.#wake()
        notifier.notify()
      },
      failed: (error, deliveries, inDoubt) => {
        this.#health.failed(error)
        runtime.logger.warn({ err: error, deliveries }, inDoubt
          ? 'the Postgres inbox got no answer to a COMMIT: the deliveries got 503 and may be recorded (a retry is then a duplicate)'
          : 'the Postgres inbox could not record the events; the deliveries got 503')
      }
    })
    const workers = new Workers({
      runtime,
      sql: this.#sql,
      pool,
      candidates: this.#candidates,
      slots,
      now: () => this.#now(),
      countAttempt: async (id) => { await control.countAttempt(id) },
      failed: (error) => {
        this.#health.failed(error)
        runtime.logger.error({ err: error }, 'the Postgres inbox could not claim an event or record its outcome; nothing of that attempt is kept and the event runs again')
      },
      succeeded: () => { this.#health.succeeded() },
      wakeIn: (ms) => { this.#timers.after(ms, () => { this.#wakeToScan() }) }
    })
    this.#running = { pool, ownsPool: options.pool === undefined, control, accepts, workers, notifier }
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
        this.#pending = (await client.query<{ pending: number }>(this.#sql.countPending)).rows[0]?.pending ?? 0
      } finally {
        client.release()
      }
    } catch (error) {
      if (error instanceof SchemaError) throw error
      this.#health.failed(error)
      this.#runtime?.logger.error({ err: error }, 'the Postgres inbox cannot reach its database; deliveries get 503 until it can')
      this.#timers.after(this.#options.pollIntervalMs, () => { void this.#prepare().catch((schemaError: unknown) => { this.#health.failed(schemaError) }) })
      return
    }
    await running.control.open()
    this.#ready = true
    this.#health.succeeded()
    this.#timers.every(this.#options.pollIntervalMs, () => { this.#poll() })
    this.#timers.every(this.#options.purgeIntervalMs, () => { this.#purgeQuietly() })
    this.#wake()
  }

  /** Events not yet done or dead, across every instance, as counted at the last poll plus those accepted here since. */
  get size (): number {
    return this.#pending
  }

  accept (event: AnyEvent, receivedAt: number): AcceptOutcome | Promise<AcceptOutcome> {
    const running = this.#running
    if (running === undefined || !this.#ready || this.#closing) return 'unavailable'
    // Counted once per poll, not per delivery: a bound on backlog, not an exact one.
    if (this.#pending >= (this.#runtime?.options.maxQueueSize ?? defaults.maxQueueSize)) return 'full'
    return running.accepts.add(event, receivedAt)
  }

  health (): InboxHealth {
    return this.#health.report({ controlError: this.#running?.control.lastError, starting: this.#running !== undefined && !this.#ready && !this.#closing })
  }

  async outcome (id: string): Promise<EventOutcome | undefined> {
    const { rows } = await (await this.#pool()).query<EventRow>(this.#sql.outcome, [id])
    return rows[0] === undefined ? undefined : toOutcome(rows[0])
  }

  async deadLetters (query: DeadLetterQuery = {}): Promise<EventOutcome[]> {
    const { rows } = await (await this.#pool()).query<EventRow>(this.#sql.deadLetters, [query.limit ?? 100])
    return rows.map(toOutcome)
  }

  async events (query?: EventQuery): Promise<EventOutcome[]> { return await listEvents(await this.#pool(), this.#options.schema, query) }

  async redrive (id: string): Promise<boolean> {
    const { rowCount } = await (await this.#pool()).query(this.#sql.redrive, [id, this.#now(), this.#sql.wakeChannel])
    return rowCount === 1
  }

  /** Events by state, for operators (`sir-webhooks inbox stats`). */
  async counts (): Promise<Record<OutcomeState, number>> {
    const { rows } = await (await this.#pool()).query<{ state: OutcomeState, count: string }>(this.#sql.countByState)
    return countsByState(rows)
  }

  /**
   * Deletes done events past `retentionSeconds` and dead ones past
   * `deadLetterRetentionSeconds`, or, with `before`, both that finished before it.
   * Pending events are never purged.
   */
  async purge (options: PurgeOptions = {}): Promise<PurgeResult> {
    const pool = await this.#pool()
    const cutoffs = purgeCutoffs(this.#now(), options, this.#options, this.#runtime?.options)
    const purge = async (state: 'done' | 'dead', before: number): Promise<number> =>
      (await pool.query<{ purged: number }>(this.#sql.purge, [state, before])).rows[0]?.purged ?? 0
    const done = await purge('done', cutoffs.done)
    const dead = cutoffs.dead === undefined ? 0 : await purge('dead', cutoffs.dead)
    return { done, dead }
  }

  /**
   * Stops taking work, lets the batches being committed finish, and waits up to
   * `graceMs` for running events. Dead-letters nothing: what is unfinished stays
   * pending in the table. Events still running after the grace period have their
   * connection ended, so their transactions roll back and another instance (or
   * the next start) takes them at once. Safe to call more than once.
   */
  close (graceMs: number): Promise<void> {
    this.#closed ??= this.#close(graceMs)
    return this.#closed
  }

  async #close (graceMs: number): Promise<void> {
    this.#closing = true
    await this.#queryPool?.end()
    const running = this.#running
    if (running === undefined) return
    running.workers.stop()
    running.notifier.stop()
    await running.accepts.settled()
    await wakeOrTimeout(graceMs, (wake) => { running.workers.onIdle(wake) })
    const cut = running.workers.releaseByForce()
    if (cut > 0) this.#runtime?.logger.warn({ events: cut }, 'close() ran out of time; the unfinished events were rolled back and stay pending for another instance or the next start')
    this.#timers.clear()
    await running.control.close()
    if (running.ownsPool) await running.pool.end()
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
      if (running?.control.connected === true) running.workers.wake()
    })
  }

  /** Wakes the workers to look in the table, not only at this process's accepts. */
  #wakeToScan (): void {
    this.#candidates.wantScan()
    this.#wake()
  }

  #poll (): void {
    this.#wakeToScan()
    this.#running?.pool.query<{ pending: number }>(this.#sql.countPending).then(({ rows }) => {
      this.#pending = rows[0]?.pending ?? this.#pending
    }, (error: unknown) => { this.#health.failed(error) })
  }

  #purgeQuietly (): void {
    purgeQuietly(async () => await this.purge(), this.#runtime?.logger, 'Postgres')
  }
}

/** A durable inbox in PostgreSQL, shared by every receiver on the database, with exactly-once database effects. */
export function postgresInbox (options: PostgresInboxOptions): PostgresInbox {
  return new PostgresInbox(options)
}
