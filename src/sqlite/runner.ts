import { reportFailures, runAttempt } from '../core/attempt.js'
import { backoffDelay } from '../core/backoff.js'
import { runFlowAttempt } from '../core/flow/attempt.js'
import type { AnyEvent } from '../core/events.js'
import { wakeOrTimeout } from '../core/timeouts.js'
import { UnrefTimers } from '../core/unref-timers.js'
import type { InboxRuntime } from '../core/inbox.js'
import { errorSummary } from '../core/outcome.js'
import type { Batch, GroupCommit } from './group-commit.js'
import type { HealthCheckedStep, HealthTracker } from './health.js'
import type { ResolvedSqliteOptions } from './options.js'
import type { AnsweringIds } from './answering.js'
import type { SqliteBacklog } from './backlog.js'
import { idFromKey, idLists } from './ids.js'
import { afterLeaseLost, afterOutcomeNotRecorded, type LateRun } from './lease-lost.js'
import type { EventRow, Stale, Statements } from './schema.js'
import type { OrderedOutcome } from '../core/ordering/engine.js'
import type { OrderedEventRef } from '../core/ordering/store.js'
import { orderedRuntime, orderingOf, refOf } from './ordered-run.js'
import { beforeRun } from './pre-run.js'
import { ClaimTurns } from './claim-turns.js'
import { attemptLogAfter, carriedFlow, deferral, flowRecord, notRunNote, type SqliteAttemptResult } from './flow-attempt.js'

/**
 * How long the handlers' own writes (claims, outcomes, renewals) wait for a lock
 * held by another process before they are given up and tried again later.
 */
const MIN_INTERNAL_WAIT_MS = 1_000

export interface RunnerParts {
  sql: Statements
  writer: GroupCommit
  health: HealthTracker
  owner: string
  options: ResolvedSqliteOptions
  runtime: InboxRuntime
  /** Told of each event finished here, in the finishing transaction: the backlog bound's count. */
  backlog?: SqliteBacklog
  answering?: AnsweringIds
}

/**
 * Runs the file's events in this process: claims due events under a lease, runs their handlers,
 * records each outcome, through the group commit (events that finish together share one transaction).
 */
export class EventRunner {
  readonly #parts: RunnerParts
  /** Events this process holds: claimed, and their outcome not yet written. */
  readonly #active = new Set<string>()
  /**
   * Of those, the ones whose attempt has not ended: what `concurrency` counts. An
   * event whose handlers are done frees its slot before its outcome is written,
   * so the next claim shares that write's transaction.
   */
  #inAttempt = 0
  readonly #timers = new UnrefTimers()
  #stopped = false
  /** stop() ran out of time: what still runs records nothing, since the file is about to close. */
  #abandoned = false
  readonly #claims = new ClaimTurns()
  #wakeScheduled = false
  #whenIdle: (() => void) | undefined

  constructor (parts: RunnerParts) {
    this.#parts = parts
  }

  /** Events this process is running. */
  get running (): number {
    return this.#active.size
  }

  /** The ids this process is running, as the statements take them. */
  runningIds (): { running: string, runningBlobs: string } {
    return idLists(this.#parts.answering?.excluded(this.#active) ?? this.#active)
  }

  /** Claims on the next turn: after an accept, so its 2xx is written before any handler starts. */
  wake (): void {
    if (this.#wakeScheduled) return
    this.#wakeScheduled = true
    setImmediate(() => {
      this.#wakeScheduled = false
      this.pump()
    })
  }

  pump (): void {
    if (this.#stopped) return
    if (!this.#claims.begin()) return
    const { sql, options, runtime, owner } = this.#parts
    if (runtime.options.concurrency - this.#inAttempt <= 0 || !runtime.hasHandlers) return
    // Everything paused: nothing is claimed, so a paused backlog costs no writes; resume() wakes the runner.
    if (runtime.flow?.pauseState().all === true) return
    this.#claims.sent()
    this.#write('claim', (batch) => {
      this.#claims.ran()
      // Counted when the transaction runs: handlers may have finished since it was asked for.
      const free = runtime.options.concurrency - this.#inAttempt
      if (free <= 0) return { rows: [], durable: batch.durable }
      const now = this.#now()
      // Accepts after this claim in its transaction may bring an event older than a head it takes,
      // answered before that head starts: such a claim takes no new key, and claims again after it.
      const rows = sql.claim.all({ owner, now, leaseUntil: now + options.leaseMs, limit: free, takeKeys: batch.durable && runtime.ordering !== undefined ? 0 : 1, ...this.runningIds() })
      return { rows, durable: batch.durable }
    }).then(({ rows, durable }) => {
      if (durable && runtime.ordering !== undefined) this.wake()
      for (const row of rows) this.#active.add(idFromKey(row.id))
      this.#inAttempt += rows.length
      // Rows claimed in the batch that accepted them start on the next turn, once
      // their 2xx is written; rows of an earlier batch start now.
      if (durable) setImmediate(() => { this.#startAll(rows) })
      else this.#startAll(rows)
    }, () => {}).finally(() => {
      if (this.#claims.ended()) this.pump()
    })
  }

  renewLeases (): void {
    if (this.#active.size === 0) return
    const { sql, options, owner } = this.#parts
    this.#parts.writer.write(() => sql.renewLeases.run({ owner, leaseUntil: this.#now() + options.leaseMs, ...this.runningIds() }), { durable: false, deadline: this.#deadline() })
      .catch((error: unknown) => { this.#parts.runtime.logger.error({ err: error }, 'the SQLite inbox could not renew its leases; another process may take its events over') })
  }

  /** Stops claiming, and waits up to `graceMs` for the running events' handlers and outcome writes. */
  async stop (graceMs: number): Promise<void> {
    this.#stopped = true
    if (this.#active.size > 0) {
      await wakeOrTimeout(graceMs, (wake) => { this.#whenIdle = wake })
      this.#whenIdle = undefined
      this.#abandoned = this.#active.size > 0
    }
    this.#timers.clear()
  }

  #startAll (rows: EventRow[]): void {
    for (const row of rows) {
      let ended = false
      const attemptEnded = (): void => {
        if (ended) return
        ended = true
        this.#inAttempt--
        this.pump()
      }
      // Claimed as close() began: not started, so close() releases its lease.
      if (this.#stopped) {
        attemptEnded()
        this.#settled(row)
        continue
      }
      // attemptEnded() claims again as the slot frees. Only an outcome that could
      // not be recorded needs one more claim after the row leaves #active: its
      // lease was let go, and claims skip rows this process still runs.
      let unrecorded = false
      this.#process(row, attemptEnded)
        .catch((error: unknown) => {
          unrecorded = true
          return this.#outcomeNotRecorded(row, error)
        })
        .finally(() => {
          attemptEnded()
          this.#settled(row)
          if (unrecorded) this.pump()
        })
    }
  }

  #settled (row: EventRow): void {
    this.#active.delete(idFromKey(row.id))
    if (this.#active.size === 0) this.#whenIdle?.()
  }

  /** A write for a handler step, its failure logged and its health recorded; `queued` runs once it is queued (an outcome frees its slot there: the claim that slot asks for then sees the key it released). */
  async #write<T> (step: HealthCheckedStep, run: (batch: Batch) => T, queued?: () => void): Promise<T> {
    const { writer, health, runtime } = this.#parts
    try {
      const written = writer.write(run, { durable: false, deadline: this.#deadline() })
      queued?.()
      const value = await written
      if (health.succeeded(step)) runtime.logger.info({}, 'the SQLite inbox recovered; deliveries are accepted again')
      return value
    } catch (error) {
      if (health.failed(step, error)) {
        runtime.logger.error({ err: error, step }, 'the SQLite inbox cannot run events; deliveries get 503 until it recovers')
      }
      if (step === 'claim') runtime.logger.error({ err: error }, 'the SQLite inbox could not claim events; will try again')
      throw error
    }
  }

  /** An ordered event's key is released (done: with its createdAt as the newest handled) or blocked in the same transaction. */
  async #finish (row: EventRow, fields: { state: 'done' | 'dead', succeeded: string, lastError: string | null, attemptLog?: string | null, skipped?: 'stale', stale: Stale }, ref: OrderedEventRef | undefined, queued: () => void): Promise<number> {
    const { sql, owner, runtime } = this.#parts
    let release = 0
    const changes = await this.#write('outcome write', () => {
      const changes = sql.finish.run({ id: row.id, owner, now: this.#now(), attemptLog: null, skipped: null, ...fields }).changes
      this.#parts.backlog?.finished(changes)
      const outcome: OrderedOutcome = fields.state === 'dead' ? 'dead' : fields.skipped ?? 'handled'
      if (changes === 1 && ref !== undefined) {
        void runtime.ordering?.finished(ref, outcome)
        release = this.#claims.released()
      }
      return changes
    }, queued)
    // No claim has run since the key was released (the one this slot asked for ran in an earlier transaction): the key's next event is claimed now.
    if (release > 0 && this.#claims.unseen(release)) this.pump()
    return changes
  }

  /** `attemptEnded` frees the event's slot once no handler of it runs any more. */
  async #process (row: EventRow, attemptEnded: () => void): Promise<void> {
    const { sql, owner } = this.#parts
    const ref = refOf(row, this.#parts.runtime.ordering)
    // The key's newest handled createdAt, as the claim read it (one query less per event).
    const ordering = ref === undefined ? undefined : orderingOf(this.#parts.runtime.ordering, ref, (row.newest_ms !== undefined ? row.newest_ms : sql.ordering.newest.get(ref.key)) ?? undefined, row.attempts === 1)
    // Every run of an ordered event, and its dead letter, carry its place in its key.
    const runtime = orderedRuntime(this.#parts.runtime, ordering)
    // Recorded with the attempt's outcome (record-schema.ts).
    const stale: Stale = ordering === undefined ? null : ordering.stale ? 1 : 0
    const prepared = beforeRun(row, runtime, ordering)
    if (prepared.event === undefined) {
      await this.#finish(row, { ...prepared.finish, stale }, ref, attemptEnded)
      if (prepared.deadLetter !== undefined) await runtime.deadLetter(prepared.deadLetter)
      return
    }
    const { event } = prepared
    const { retry } = runtime.options
    const startedAt = performance.now()
    const succeededBefore = JSON.parse(row.succeeded) as string[]
    const flow = runtime.flow
    const result: SqliteAttemptResult = flow === undefined
      ? await runAttempt(runtime, event, row.received_at, row.attempts, succeededBefore)
      : await runFlowAttempt(runtime, flow, { event, receivedAt: row.received_at, attempt: row.attempts }, succeededBefore, carriedFlow(row))
    // The slot frees as the outcome's write is queued (#write), or in #startAll's finally on the paths that write none.
    // Shutdown cut this attempt short: its handlers were told to stop, and one that
    // returned since may have stopped half-way, so nothing of it is recorded. The
    // event stays pending: close() releases it if it settled in time (the file may
    // already be closed otherwise, and the lease then expires). The attempt counts.
    if (runtime.signal.aborted || this.#abandoned) return
    const ranMs = Math.round(performance.now() - startedAt)
    const succeeded = JSON.stringify(result.succeeded)
    const attemptLog = attemptLogAfter(row, result, Date.now())
    const last = result.failures.at(-1)
    const deferred = result.deferred ?? []
    if (last === undefined && deferred.length > 0) {
      // Nothing failed, something may not run yet: back to wait, no attempt used.
      const wait = deferral(sql, { row, owner, result, succeeded, attemptLog }, () => this.#now())
      const changes = await this.#write('outcome write', wait.write, attemptEnded)
      if (changes === 0) runtime.logger.warn({ event: { id: event.id, type: event.type }, ranMs }, "the event's lease ran out before its deferred runs were recorded; the run that took it over decides")
      else this.#timers.after(wait.nextAttemptAt() - this.#now(), () => { this.pump() })
      return
    }
    if (last === undefined) {
      if (await this.#finish(row, { state: 'done', succeeded, lastError: null, attemptLog, stale }, ref, attemptEnded) === 0) await this.#leaseLost(row, event, { ranMs, succeeded, stale })
      return
    }
    const lastError = `${last.key}: ${errorSummary(last.error)}`
    if (row.attempts < retry.attempts) {
      const delay = backoffDelay(row.attempts, retry)
      const changes = await this.#write('outcome write', () => sql.retryLater.run({ id: row.id, owner, nextAttemptAt: this.#now() + delay, succeeded, lastError, flow: flowRecord(result), attemptLog, stale }).changes, attemptEnded)
      if (changes === 0) return await this.#leaseLost(row, event, { ranMs, failure: last })
      this.#timers.after(delay, () => { this.pump() })
      await reportFailures(runtime, event, row.received_at, row.attempts, result.failures, delay)
      return
    }
    if (deferred.length > 0) runtime.logger.warn({ event: { id: event.id, type: event.type }, handlers: deferred.map((run) => run.key) }, 'a handler of this event failed for good while others were deferred: they did not run; redrive the dead letter to run them')
    const dead = { state: 'dead' as const, succeeded, lastError: lastError + notRunNote(deferred), attemptLog, stale }
    if (await this.#finish(row, dead, ref, attemptEnded) === 0) return await this.#leaseLost(row, event, { ranMs, failure: last })
    await reportFailures(runtime, event, row.received_at, row.attempts, result.failures, undefined)
  }

  /** An outcome write failed: the lease is expired so that the event runs again (lease-lost.ts). */
  async #outcomeNotRecorded (row: EventRow, error: unknown): Promise<void> {
    const { runtime, sql, owner, writer } = this.#parts
    const expire = async (): Promise<void> => { await writer.write(() => sql.expireLease.run({ id: row.id, owner, now: this.#now() }), { durable: false, deadline: this.#deadline() }) }
    await afterOutcomeNotRecorded(runtime.logger, row, error, this.#abandoned ? undefined : expire)
  }

  /** The outcome write matched no row: this run's lease ran out (lease-lost.ts). */
  async #leaseLost (row: EventRow, event: AnyEvent, run: LateRun): Promise<void> {
    const { runtime, sql, options } = this.#parts
    await afterLeaseLost({ logger: runtime.logger, sql, leaseMs: options.leaseMs, now: this.#now(), write: async (write) => await this.#write('outcome write', write) }, row, event, run)
  }

  #deadline (): number {
    return Date.now() + Math.max(this.#parts.options.acceptTimeoutMs, MIN_INTERNAL_WAIT_MS)
  }

  #now (): number {
    return this.#parts.runtime.options.clock()
  }
}
