import type { PoolClient, QueryResult } from 'pg'
import { reportFailures, runAttempt, type AttemptFailure, type AttemptResult } from '../core/attempt.js'
import { backoffDelay } from '../core/backoff.js'
import { runFlowAttempt, type DeferredRun, type FlowAttemptResult } from '../core/flow/attempt.js'
import { nextRun } from '../core/flow/waits.js'
import type { InboxRuntime } from '../core/inbox.js'
import { errorSummary } from '../core/outcome.js'
import { staleColumns } from './event-record.js'
import { PAUSE_REFRESH_MS } from './flow-store.js'
import { HandlerTurns } from './handler-turns.js'
import { keyEnd, keyHeld, orderedClaim, type KeyEnd } from './ordered-run.js'
import type { OrderingQueries } from './ordering-sql.js'
import { literalsOf, type ClaimedRow, type Literal, type LoggedRun, type Queries } from './queries.js'
import { MAX_SAVEPOINTS, type Savepoint } from './savepoint.js'

/** What a handler's context gains from the Postgres inbox. */
export interface PostgresHandlerExtra {
  /**
   * A pg client inside the transaction that records this handler's success: what
   * the handler writes through it commits together with "handled", or not at all.
   * Do not BEGIN, COMMIT or ROLLBACK on it; a nested SAVEPOINT is fine.
   */
  transaction: PoolClient
}

export interface RunEnvironment {
  runtime: InboxRuntime
  sql: Queries
  now (): number
  /** Counts the attempt on a connection of its own, committed before any handler runs. */
  countAttempt (id: string): Promise<void>
  /** With the `ordering` option: what the end of an ordered event writes of its key. */
  orderingSql?: OrderingQueries | undefined
}

/** How one event's attempt ended, before the batch's transaction commits. */
interface EventEnd {
  id: string
  /** Handlers that succeeded in this attempt: their records go in with the COMMIT. */
  handled: string[]
  /** How the event's row changes: done, or a statement for a retry or a dead letter. */
  record: 'done' | string
  /** SET clauses a done event's row also gets (`staleColumns`): done events are finished by one statement per distinct `marks`. */
  marks?: string
  /** What the runtime is told once that commit succeeded. */
  afterCommit (): Promise<void>
  retryInMs?: number
  /** Done or dead: no longer pending. */
  finished: boolean
  /** An ordered event's turn ended: what its commit writes of its key. */
  key?: KeyEnd
}

export interface BatchEnd {
  /** Claimed, not started (the batch ran out of time, or shutdown began): pending as they were. */
  unrun: ClaimedRow[]
  /** Retries due later, in ms from now. */
  retriesInMs: number[]
  /** Events of the batch now done or dead. */
  finished: number
  /** The next heads of the ordering keys this batch's commit freed, read in it: they may be claimed now. */
  nextHeads: NextHead[]
}

/** A key's head: the pending event of the key with the oldest createdAt, then acceptance. */
export interface NextHead { id: string, next_attempt_at: string }

/**
 * Runs claimed events one after another inside the claiming transaction on
 * `client`, and ends that transaction with one COMMIT. Each handler runs in a
 * savepoint: a handler that throws has its writes rolled back and the others
 * keep theirs. The handlers that succeeded, their success records and each
 * event's new state commit together; a crash before that commit leaves every
 * event of the batch as it was, pending, for the next claim. No event starts
 * once `budgetMs` has passed, so that slow handlers do not hold finished work
 * uncommitted. Throws when the transaction itself broke (the connection, the
 * COMMIT): then nothing of this batch is recorded.
 */
export async function runClaimedBatch (env: RunEnvironment, client: PoolClient, rows: readonly ClaimedRow[], budgetMs: number): Promise<BatchEnd> {
  const started = performance.now()
  const ends: EventEnd[] = []
  const literal = literalsOf(client)
  // The claim opened the first savepoint.
  const savepoint: Savepoint = { fresh: true, opened: 1 }
  let count = 0
  for (const row of rows) {
    // An event started before (a retry, or in a batch that broke: a crash, a lost
    // connection) runs in a batch of its own. The batch's attempts are counted
    // as each event starts and its work commits at the end, so a neighbour that
    // takes the process down costs every event already run an attempt: alone,
    // such an event cannot be charged a second one, nor charge another.
    if (count > 0 && (row.started > 0 || performance.now() - started > budgetMs || savepoint.opened >= MAX_SAVEPOINTS || env.runtime.signal.aborted)) break
    const end = await runClaimedEvent(env, client, literal, row, savepoint)
    // Shutdown cut this attempt short: a handler that returned since may have
    // stopped half-way, so none of the batch is kept. Its events stay pending,
    // their attempts counted.
    if (end === undefined) {
      await client.query('ROLLBACK')
      return { unrun: [], retriesInMs: [], finished: 0, nextHeads: [] }
    }
    ends.push(end)
    count++
    if (row.started > 0) break
  }
  const results = await client.query(commitStatements(env.sql, env.orderingSql, literal, env.now(), ends)) as unknown as QueryResult | QueryResult[]
  const retriesInMs: number[] = []
  for (const end of ends) {
    await end.afterCommit()
    await end.key?.afterCommit()
    if (end.retryInMs !== undefined) retriesInMs.push(end.retryInMs)
  }
  const heads = Array.isArray(results) ? results.findLast((result) => result.command === 'SELECT') : undefined
  return { unrun: rows.slice(count), retriesInMs, finished: ends.filter(({ finished }) => finished).length, nextHeads: (heads?.rows ?? []) as NextHead[] }
}

/**
 * The batch's last round trip: every success record, every event's new state,
 * the keys it frees and their next heads (read before COMMIT, so that a failure
 * reading them fails the batch as any statement of it would, not a batch
 * already committed), COMMIT.
 */
function commitStatements (sql: Queries, orderingSql: OrderingQueries | undefined, literal: Literal, now: number, ends: readonly EventEnd[]): string {
  const handled = ends.flatMap(({ id, handled }) => handled.map((key) => [id, key] as const))
  const done = new Map<string, string[]>()
  for (const { id, record, marks = '' } of ends) if (record === 'done') done.set(marks, [...done.get(marks) ?? [], id])
  const statements = ends.flatMap(({ record }) => record === 'done' ? [] : [record])
  for (const { key } of ends) if (key?.statement !== undefined) statements.push(key.statement)
  if (handled.length > 0) statements.unshift(sql.recordHandled(literal, handled, now))
  for (const [marks, ids] of done) statements.push(sql.finishDone(literal, ids, now, marks))
  const keysHandled = ends.flatMap(({ key }) => key?.handled === undefined ? [] : [key.handled])
  const released = ends.flatMap(({ key }) => key?.released === undefined ? [] : [key.released])
  if (orderingSql !== undefined && keysHandled.length + released.length > 0) statements.push(orderingSql.movedOn(literal, keysHandled, released, now))
  statements.push('COMMIT')
  return statements.join(';\n')
}

/** One event's attempt, in the open transaction. Undefined: shutdown cut it short. */
async function runClaimedEvent (env: RunEnvironment, client: PoolClient, literal: Literal, row: ClaimedRow, savepoint: Savepoint): Promise<EventEnd | undefined> {
  const { runtime, sql } = env
  const receivedAt = Number(row.received_at)
  const attempt = row.started + 1
  const { retry } = runtime.options
  const event = row.event ?? { id: row.id, type: row.type, createdAt: '', data: {} }
  // Started as often as retries allow and never finished: the process died (or
  // its connection did) each time. Running it again could crash the receiver forever.
  // Or a body that no longer parses (edited in the database): no handler can run it.
  const unrunnable = attempt > retry.attempts
    ? new Error(`the receiver stopped during each of ${row.started} attempts`)
    : row.event === undefined ? new Error('the stored body is no longer a valid event') : undefined
  // Claimed as the head of its key: its turn began with this claim and ends when it is done or dead.
  const ordered = orderedClaim(runtime.ordering, row, event.id)
  const ends = (outcome: 'handled' | 'stale' | 'dead' | 'again'): { key?: KeyEnd } =>
    ordered === undefined || runtime.ordering === undefined || env.orderingSql === undefined
      ? {}
      : { key: outcome === 'again' ? keyHeld(env.orderingSql, literal, ordered) : keyEnd(runtime.ordering, env.orderingSql, literal, ordered, outcome, env.now()) }
  if (unrunnable !== undefined) {
    const note = ordered === undefined ? {} : { ordering: runtime.ordering?.deadLetterNote(ordered.ref.key) }
    return {
      id: row.id,
      handled: [],
      record: sql.finish(literal, row.id, 'dead', env.now(), errorSummary(unrunnable)),
      afterCommit: async () => { await runtime.deadLetter({ event, reason: 'handler_failed', error: unrunnable, attempts: row.started, receivedAt: new Date(receivedAt), ...note }) },
      finished: true,
      ...ends('dead')
    }
  }
  if (ordered !== undefined && runtime.ordering?.skips(ordered.told) === true) return skippedStale(row.id, ends('stale'))
  // What an ordered event's record keeps of what its handlers were told.
  const marks = ordered === undefined ? '' : staleColumns(ordered.told.stale, false)
  const turns = new HandlerTurns(runtime, client, savepoint, async () => { await env.countAttempt(row.id) }, ordered?.told)
  const flow = runtime.flow
  const result: AttemptResult & Partial<FlowAttemptResult> = flow === undefined
    ? await runAttempt(turns.runtime, event, receivedAt, attempt, row.succeeded)
    : await runFlowAttempt(turns.runtime, flow, { event, receivedAt, attempt }, row.succeeded, row.flow ?? {})
  if (turns.broken !== undefined) throw turns.broken
  if (runtime.signal.aborted) return undefined
  const before = new Set(row.succeeded)
  const handled = result.succeeded.filter((key) => !before.has(key))
  const { failures } = result
  const deferred = result.deferred ?? []
  const now = env.now()
  const log = attemptLog(failures, deferred, attempt, now)
  // What the engine hands back for the event's next run (RetryLater records, reserved tokens); none once done.
  const carry = Object.keys(result.deferrals ?? {}).length + Object.keys(result.reserved ?? {}).length > 0
    ? JSON.stringify({ deferrals: result.deferrals, reserved: result.reserved })
    : null
  const last = failures.at(-1)
  if (last === undefined && deferred.length === 0) {
    return { id: row.id, handled, record: 'done', marks, afterCommit: async () => { turns.told() }, finished: true, ...ends('handled') }
  }
  if (last === undefined) {
    // Nothing failed, some runs may not start yet: back to wait, no attempt used
    // (one counted for a run that threw RetryLater is taken back in this commit).
    const { nextAttemptAt, run } = nextRun(deferred, now)
    const retryInMs = Math.max(1, nextAttemptAt - now)
    const wait = { reason: run.reason, handler: run.handler, at: nextAttemptAt, unpausedAt: now + PAUSE_REFRESH_MS }
    const record = sql.defer(literal, row.id, wait, sql.flowColumns(literal, carry, log) + marks) +
      (turns.counted ? ';\n' + sql.uncountAttempt(literal, row.id) : '')
    return { id: row.id, handled, record, afterCommit: async () => { turns.told() }, retryInMs, finished: false, ...ends('again') }
  }
  const lastError = `${last.key}: ${errorSummary(last.error)}`
  if (attempt < retry.attempts) {
    const retryInMs = backoffDelay(attempt, retry)
    return {
      id: row.id,
      handled,
      record: sql.retryLater(literal, row.id, now + retryInMs, lastError, sql.flowColumns(literal, carry, log) + marks),
      afterCommit: async () => {
        turns.told()
        await reportFailures(turns.runtime, event, receivedAt, attempt, failures, retryInMs)
      },
      retryInMs,
      finished: false,
      ...ends('again')
    }
  }
  const notRun = deferred.length === 0 ? '' : `; not run: deferred (${deferred.map((run) => `${run.key}: ${run.reason}`).join(', ')})`
  if (notRun !== '') {
    runtime.logger.warn({ event: { id: event.id, type: event.type }, handlers: deferred.map((run) => run.key) },
      'a handler of this event failed for good while others were deferred: they did not run; redrive the dead letter to run them')
  }
  return {
    id: row.id,
    handled,
    record: sql.finish(literal, row.id, 'dead', now, lastError + notRun, sql.flowColumns(literal, carry, log) + marks),
    afterCommit: async () => {
      turns.told()
      await reportFailures(turns.runtime, event, receivedAt, attempt, failures, undefined)
    },
    finished: true,
    ...ends('dead')
  }
}

/** Stale, with `ordering.skipStale`: done, no handler run, no attempt used, recorded as `skipped: 'stale'`; its key moves on. */
function skippedStale (id: string, end: { key?: KeyEnd }): EventEnd {
  return { id, handled: [], record: 'done', marks: staleColumns(true, true), afterCommit: async () => {}, finished: true, ...end }
}

/** The attempt log's new entries: each failed and each deferred run of this attempt. Never the body. */
function attemptLog (failures: readonly AttemptFailure[], deferred: readonly DeferredRun[], attempt: number, now: number): LoggedRun[] {
  return [
    ...failures.map(({ key, error }) => ({ handler: key, attempt, at: now, outcome: 'failed' as const, error: errorSummary(error) })),
    ...deferred.map(({ key, reason, retryInMs }) => ({ handler: key, attempt, at: now, outcome: 'deferred' as const, error: `deferred (${reason}), runs again in ${Math.round(retryInMs)} ms` }))
  ]
}
