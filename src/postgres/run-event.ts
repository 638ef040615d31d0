import type { PoolClient } from 'pg'
import { keyedHandlers, reportFailures, type AttemptFailure } from '../core/attempt.js'
import { backoffDelay } from '../core/backoff.js'
import type { HandlerRun, InboxRuntime } from '../core/inbox.js'
import { errorSummary } from '../core/outcome.js'
import { literalsOf, type ClaimedRow, type Literal, type Queries } from './queries.js'

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
}

/** How one event's attempt ended, before the batch's transaction commits. */
interface EventEnd {
  id: string
  /** Handlers that succeeded in this attempt: their records go in with the COMMIT. */
  handled: string[]
  /** How the event's row changes: done, or a statement for a retry or a dead letter. */
  record: 'done' | string
  /** What the runtime is told once that commit succeeded. */
  afterCommit (): Promise<void>
  retryInMs?: number
  /** Done or dead: no longer pending. */
  finished: boolean
}

export interface BatchEnd {
  /** Claimed, not started (the batch ran out of time, or shutdown began): pending as they were. */
  unrun: ClaimedRow[]
  /** Retries due later, in ms from now. */
  retriesInMs: number[]
  /** Events of the batch now done or dead. */
  finished: number
}

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
      return { unrun: [], retriesInMs: [], finished: 0 }
    }
    ends.push(end)
    count++
    if (row.started > 0) break
  }
  await client.query(commitStatements(env.sql, literal, env.now(), ends))
  const retriesInMs: number[] = []
  for (const end of ends) {
    await end.afterCommit()
    if (end.retryInMs !== undefined) retriesInMs.push(end.retryInMs)
  }
  return { unrun: rows.slice(count), retriesInMs, finished: ends.filter(({ finished }) => finished).length }
}

/** The batch's last round trip: every success record, every event's new state, COMMIT. */
function commitStatements (sql: Queries, literal: Literal, now: number, ends: readonly EventEnd[]): string {
  const handled = ends.flatMap(({ id, handled }) => handled.map((key) => [id, key] as const))
  const done = ends.filter(({ record }) => record === 'done').map(({ id }) => id)
  const statements = ends.flatMap(({ record }) => record === 'done' ? [] : [record])
  if (handled.length > 0) statements.unshift(sql.recordHandled(literal, handled, now))
  if (done.length > 0) statements.push(sql.finishDone(literal, done, now))
  statements.push('COMMIT')
  return statements.join(';\n')
}

/**
 * Savepoints one batch opens before it starts no new event. Postgres keeps the
 * subtransactions of a transaction in shared memory up to 64; past that, every
 * other session's snapshot has to look them up on disk while it runs. The
 * margin is for handlers' own savepoints.
 */
const MAX_SAVEPOINTS = 40

/** A savepoint that no handler has written in yet is open on the batch's client when `fresh`; `opened` counts them. */
interface Savepoint { fresh: boolean, opened: number }

/**
 * A handler that caught a failed query of its own and returned has not
 * succeeded: its transaction can no longer commit. pg 8.21 and later keep the
 * status Postgres sent with its last answer ('E': failed, 'I': the handler ended
 * the transaction itself), so no round trip is needed; with an older pg the
 * savepoint is released and opened again now, which fails in the same cases
 * (and so it is while an answer of the handler's last query is still on its way).
 */
async function checkTransaction (client: PoolClient, savepoint: Savepoint): Promise<void> {
  const pgClient = client as { getTransactionStatus?: () => string | null, readyForQuery?: boolean }
  // pg rejects a failed query on its error, before the server's ready-for-query
  // that carries the new status: until that has come, the status is stale.
  const status = pgClient.readyForQuery === true ? pgClient.getTransactionStatus?.() : undefined
  if (status === undefined) {
    await renewSavepoint(client, savepoint)
    return
  }
  if (status === 'E') throw new Error('current transaction is aborted: a query of the handler failed and the handler returned anyway')
  if (status !== 'T') throw new Error('the handler ended its transaction (COMMIT or ROLLBACK on `transaction`)')
}

/** Keeps the writes made since the savepoint and opens a new one for what comes next. */
async function renewSavepoint (client: PoolClient, savepoint: Savepoint): Promise<void> {
  await client.query('RELEASE SAVEPOINT sir_handler; SAVEPOINT sir_handler')
  savepoint.fresh = true
  savepoint.opened++
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
  if (unrunnable !== undefined) {
    return {
      id: row.id,
      handled: [],
      record: sql.finish(literal, row.id, 'dead', env.now(), errorSummary(unrunnable)),
      afterCommit: async () => { await runtime.deadLetter({ event, reason: 'handler_failed', error: unrunnable, attempts: row.started, receivedAt: new Date(receivedAt) }) },
      finished: true
    }
  }
  await env.countAttempt(row.id)
  const done = new Set(row.succeeded)
  const failures: AttemptFailure[] = []
  // Counted as succeeded only once their writes have committed.
  const succeeded: HandlerRun[] = []
  const handled: string[] = []
  for (const keyed of keyedHandlers(runtime.handlersFor(event.type))) {
    if (done.has(keyed.key) || runtime.signal.aborted) continue
    // The last handler's writes stay; this one's start from here.
    if (!savepoint.fresh) await renewSavepoint(client, savepoint)
    savepoint.fresh = false
    try {
      const run = { event, handler: keyed.handler, attempt, receivedAt }
      await runtime.runHandler(run, { transaction: client } satisfies PostgresHandlerExtra)
      await checkTransaction(client, savepoint)
      succeeded.push(run)
      handled.push(keyed.key)
      done.add(keyed.key)
    } catch (error) {
      // Throws in turn when the handler ended the transaction itself: the batch is lost.
      await client.query('ROLLBACK TO SAVEPOINT sir_handler')
      savepoint.fresh = true
      failures.push({ ...keyed, error })
    }
  }
  if (runtime.signal.aborted) return undefined
  const told = (): void => { for (const run of succeeded) runtime.handlerSucceeded(run) }
  const last = failures.at(-1)
  if (last === undefined) {
    return { id: row.id, handled, record: 'done', afterCommit: async () => { told() }, finished: true }
  }
  const lastError = `${last.key}: ${errorSummary(last.error)}`
  if (attempt < retry.attempts) {
    const retryInMs = backoffDelay(attempt, retry)
    return {
      id: row.id,
      handled,
      record: sql.retryLater(literal, row.id, env.now() + retryInMs, lastError),
      afterCommit: async () => {
        told()
        await reportFailures(runtime, event, receivedAt, attempt, failures, retryInMs)
      },
      retryInMs,
      finished: false
    }
  }
  return {
    id: row.id,
    handled,
    record: sql.finish(literal, row.id, 'dead', env.now(), lastError),
    afterCommit: async () => {
      told()
      await reportFailures(runtime, event, receivedAt, attempt, failures, undefined)
    },
    finished: true
  }
}
