import type { Pool } from 'pg'
import { AcceptPriority } from '../core/accept-priority.js'
import type { InboxRuntime } from '../core/inbox.js'
import type { WebhookLogger } from '../core/logger.js'
import { wakeOrTimeout } from '../core/timeouts.js'
import { eventTag } from '../core/run-context.js'
import type { UnrefTimers } from '../core/unref-timers.js'
import type { Backlog } from './backlog.js'
import type { Candidates } from './candidates.js'
import { ControlConnection } from './control-connection.js'
import { loadPg } from './driver.js'
import { GroupCommit, MAX_IN_FLIGHT } from './group-commit.js'
import { WakeNotifier } from './notifier.js'
import { sessionOptions, type ResolvedPostgresOptions } from './options.js'
import type { Queries } from './queries.js'
import type { OrderingQueries } from './ordering-sql.js'
import { storedKey } from './stored-text.js'
import type { PostgresHandlerExtra } from './run-event.js'
import { redactedStoreError } from './store-errors.js'
import type { StoreHealth } from './store-health.js'
import { Workers } from './workers.js'

/** What a started inbox runs on. */
export interface Running {
  pool: Pool
  ownsPool: boolean
  control: ControlConnection
  accepts: GroupCommit
  workers: Workers
  notifier: WakeNotifier
  priority: AcceptPriority
}

/** The inbox's state that its parts report to. */
export interface InboxState {
  options: ResolvedPostgresOptions
  sql: Queries
  runtime: InboxRuntime<PostgresHandlerExtra>
  health: StoreHealth
  backlog: Backlog
  candidates: Candidates
  timers: UnrefTimers
  /** With the `ordering` option: the SQL of the keys, and a call to count them again soon (ordering-store.ts). */
  orderingSql: OrderingQueries | undefined
  orderingAccepted (): void
  now (): number
  /** Wakes the workers for this process's own accepts. */
  wake (): void
  /** Wakes the workers to look in the table. */
  wakeToScan (): void
}

/**
 * The pool, the control connection, the accepts' group commit, the workers and
 * the notifier, wired to the inbox's state. Every store error they log or
 * report goes through `redactedStoreError`: no field that can quote an event.
 */
export async function startParts (inbox: InboxState): Promise<Running> {
  const { options, runtime } = inbox
  const pg = await loadPg()
  const { concurrency } = runtime.options
  const pool = options.pool ?? new pg.Pool({
    connectionString: options.connectionString,
    max: concurrency + MAX_IN_FLIGHT + 1,
    connectionTimeoutMillis: options.acceptTimeoutMs,
    // The idle limit set once per session: a SET LOCAL in every transaction costs a statement each.
    ...sessionOptions(options)
  })
  // An idle client's error (the server restarted) is emitted on the pool; unheard, it would crash the process.
  pool.on('error', (error) => { inbox.health.failed(redactedStoreError(error)) })
  const poolMax = pool.options.max ?? 10
  const slots = Math.max(1, Math.min(concurrency, poolMax - MAX_IN_FLIGHT))
  if (slots < concurrency) {
    runtime.logger.warn({ poolMax, concurrency, handlersAtOnce: slots }, `the pg pool is too small for "concurrency": the Postgres inbox runs ${slots} events at once, leaving ${MAX_IN_FLIGHT} clients for accepts; give the pool max: concurrency + ${MAX_IN_FLIGHT + 1}`)
  }
  const notifier = new WakeNotifier(pool, inbox.sql.notifyOthers, () => !runtime.hasHandlers, runtime.logger)
  const control = new ControlConnection(
    // Named, so that an operator can tell it in pg_stat_activity.
    () => new pg.Client({ ...(options.connectionString !== undefined ? { connectionString: options.connectionString } : pool.options), application_name: `sir-webhooks control ${options.schema}` }),
    inbox.sql.wakeChannel, inbox.sql.countAttempts, (payload) => {
      // Another instance accepted, a redrive, or a reconnection: what is due is in the table.
      const request = notifier.heard(payload)
      if (request === 'now') {
        inbox.wakeToScan()
      } else if (request === 'after own accepts') {
        inbox.candidates.othersAccepted()
        inbox.wake()
      }
    }, runtime.logger)
  const ordering = inbox.orderingSql === undefined ? undefined : runtime.ordering
  // Handlers give way while accepts wait on the database (core/accept-priority.ts).
  // Workers ask for their allowance as they claim; a raise (the ramp of a start, the return after idleMs) wakes them, busy or not.
  const priority = new AcceptPriority(slots, { waitingSince: () => accepts.oldestWaitingSince(), onChange: () => { inbox.wake() } })
  const accepts = new GroupCommit(pool, inbox.sql, {
    ...options,
    begin: inbox.sql.beginAccept,
    // The key is computed once, here, before the INSERT that stores it (so a duplicate's too).
    ...(ordering === undefined
      ? {}
      : {
          orderingOf: (event, receivedAt) => {
            const ref = ordering.refFor(event, receivedAt)
            return ref === undefined ? undefined : { key: storedKey(ref.key), createdAt: ref.createdAt, notBefore: ref.notBefore }
          }
        })
  }, {
    committed: (inserted, waitedMs) => {
      priority.accepted(waitedMs)
      inbox.backlog.added(inserted.size)
      inbox.health.succeeded()
      if (inserted.size === 0) return
      // Held events (ordering.holdMs) are due once their hold ends: looked for then.
      if (ordering !== undefined && ordering.options.holdMs > 0) inbox.timers.after(ordering.options.holdMs + 1, () => { inbox.wakeToScan() })
      if (ordering !== undefined) inbox.orderingAccepted()
      // A process without handlers would only pile the ids up; its poll scans once it has some.
      if (runtime.hasHandlers) inbox.candidates.addAccepted(inserted)
      inbox.wake()
      notifier.notify()
    },
    failed: (error, deliveries, inDoubt) => {
      const err = redactedStoreError(error)
      inbox.health.failed(err)
      runtime.logger.warn({ err, deliveries }, inDoubt
        ? 'the Postgres inbox got no answer to a COMMIT: the deliveries got 503 and may be recorded (a retry is then a duplicate)'
        : 'the Postgres inbox could not record the events; the deliveries got 503')
    },
    rowFailed: (error, event) => {
      // Not the store failing: only this event's row. Its id and type, never its body.
      runtime.logger.warn({ err: redactedStoreError(error), event: eventTag(event) }, 'the Postgres inbox could not record this event (the database refused its row); its delivery got 503, the others of its batch were recorded')
    }
  })
  const workers = new Workers({
    runtime,
    sql: inbox.sql,
    pool,
    candidates: inbox.candidates,
    slots,
    allowed: () => priority.allowed,
    now: () => inbox.now(),
    countAttempt: async (id) => { await control.countAttempt(id) },
    orderingSql: ordering === undefined ? undefined : inbox.orderingSql,
    failed: (error) => {
      const err = redactedStoreError(error)
      inbox.health.failed(err)
      runtime.logger.error({ err }, 'the Postgres inbox could not claim an event or record its outcome; nothing of that attempt is kept and the event runs again')
    },
    succeeded: (finished) => {
      inbox.health.succeeded()
      inbox.backlog.finished(finished)
    },
    wakeIn: (ms) => { inbox.timers.after(ms, () => { inbox.wakeToScan() }) }
  })
  return { pool, ownsPool: options.pool === undefined, control, accepts, workers, notifier, priority }
}

/**
 * Stops what `startParts` started: no new claims, the accepts' batches settled,
 * up to `graceMs` for running events, then the connections of those still
 * running ended (their transactions roll back: the events stay pending for
 * another instance or the next start). `stopTimers` runs before the control
 * connection closes.
 */
export async function stopParts (running: Running, graceMs: number, logger: WebhookLogger | undefined, stopTimers: () => void): Promise<void> {
  running.workers.stop()
  running.notifier.stop()
  running.priority.stop()
  await running.accepts.settled()
  await wakeOrTimeout(graceMs, (wake) => { running.workers.onIdle(wake) })
  const cut = running.workers.releaseByForce()
  if (cut > 0) logger?.warn({ events: cut }, 'close() ran out of time; the unfinished events were rolled back and stay pending for another instance or the next start')
  stopTimers()
  await running.control.close()
  if (running.ownsPool) await running.pool.end()
}
