import type { PoolClient } from 'pg'
import { keyedHandlers, reportFailures, type AttemptFailure } from '../core/attempt.js'
import { backoffDelay } from '../core/backoff.js'
import type { HandlerRun, InboxRuntime } from '../core/inbox.js'
import { errorSummary } from '../core/outcome.js'
import { literalsOf, type ClaimedRow, type Queries } from './queries.js'

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

/** Why an event went back to the table without an outcome: said in the logs. */
export type RunEnd = { retryInMs?: number }

/**
 * Runs one claimed event inside the claiming transaction on `client`, and ends
 * that transaction. Handlers run one after another, each in a savepoint: a
 * handler that throws has its writes rolled back and the others keep theirs.
 * The handlers that succeeded, their success records and the event's new state
 * commit together at the end; a crash before that commit leaves the event as it
 * was, pending, for the next claim. Throws when the transaction itself broke
 * (the connection, the COMMIT): then nothing of this attempt is recorded.
 */
export async function runClaimedEvent (env: RunEnvironment, client: PoolClient, row: ClaimedRow): Promise<RunEnd> {
  const { runtime, sql } = env
  const { event } = row
  const literal = literalsOf((text) => client.escapeLiteral(text))
  const receivedAt = Number(row.received_at)
  const attempt = row.started + 1
  const { retry } = runtime.options
  if (attempt > retry.attempts) {
    // Started as often as retries allow and never finished: the process died (or
    // its connection did) each time. Running it again could crash the receiver forever.
    const error = new Error(`the receiver stopped during each of ${row.started} attempts`)
    await client.query(sql.finishAndCommit(literal, row.id, 'dead', env.now(), errorSummary(error)))
    await runtime.deadLetter({ event, reason: 'handler_failed', error, attempts: row.started, receivedAt: new Date(receivedAt) })
    return {}
  }
  await env.countAttempt(row.id)
  const done = new Set(row.succeeded)
  const failures: AttemptFailure[] = []
  // Counted as succeeded only once their writes have committed.
  const succeeded: HandlerRun[] = []
  // The claim opened the first savepoint; a success releases it, a failure rolls back to it and keeps it.
  let savepoint = true
  for (const keyed of keyedHandlers(runtime.handlersFor(event.type))) {
    if (done.has(keyed.key) || runtime.signal.aborted) continue
    if (!savepoint) await client.query('SAVEPOINT sir_handler')
    try {
      const run = { event, handler: keyed.handler, attempt, receivedAt }
      await runtime.runHandler(run, { transaction: client } satisfies PostgresHandlerExtra)
      await client.query(sql.recordHandled(literal, row.id, keyed.key, env.now()))
      succeeded.push(run)
      savepoint = false
      done.add(keyed.key)
    } catch (error) {
      // Throws in turn when the handler ended the transaction itself: the attempt is lost.
      await client.query('ROLLBACK TO SAVEPOINT sir_handler')
      savepoint = true
      failures.push({ ...keyed, error })
    }
  }
  // Shutdown cut this attempt short: a handler that returned since may have
  // stopped half-way, so none of it is kept. The event stays pending, the attempt counted.
  if (runtime.signal.aborted) {
    await client.query('ROLLBACK')
    return {}
  }
  const last = failures.at(-1)
  if (last === undefined) {
    await client.query(sql.finishAndCommit(literal, row.id, 'done', env.now(), null))
    for (const run of succeeded) runtime.handlerSucceeded(run)
    return {}
  }
  const lastError = `${last.key}: ${errorSummary(last.error)}`
  if (attempt < retry.attempts) {
    const retryInMs = backoffDelay(attempt, retry)
    await client.query(sql.retryLaterAndCommit(literal, row.id, env.now() + retryInMs, lastError))
    for (const run of succeeded) runtime.handlerSucceeded(run)
    await reportFailures(runtime, event, receivedAt, attempt, failures, retryInMs)
    return { retryInMs }
  }
  await client.query(sql.finishAndCommit(literal, row.id, 'dead', env.now(), lastError))
  for (const run of succeeded) runtime.handlerSucceeded(run)
  await reportFailures(runtime, event, receivedAt, attempt, failures, undefined)
  return {}
}
