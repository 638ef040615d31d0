import type { PoolClient } from 'pg'

/**
 * Savepoints one batch opens before it starts no new event. Postgres keeps the
 * subtransactions of a transaction in shared memory up to 64; past that, every
 * other session's snapshot has to look them up on disk while it runs. The
 * margin is for handlers' own savepoints.
 */
export const MAX_SAVEPOINTS = 40

/** A savepoint that no handler has written in yet is open on the batch's client when `fresh`; `opened` counts them. */
export interface Savepoint { fresh: boolean, opened: number }

/**
 * A handler that caught a failed query of its own and returned has not
 * succeeded: its transaction can no longer commit. pg 8.21 and later keep the
 * status Postgres sent with its last answer ('E': failed, 'I': the handler ended
 * the transaction itself), so no round trip is needed; with an older pg the
 * savepoint is released and opened again now, which fails in the same cases
 * (and so it is while an answer of the handler's last query is still on its way).
 */
export async function checkTransaction (client: PoolClient, savepoint: Savepoint): Promise<void> {
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
export async function renewSavepoint (client: PoolClient, savepoint: Savepoint): Promise<void> {
  await client.query('RELEASE SAVEPOINT sir_handler; SAVEPOINT sir_handler')
  savepoint.fresh = true
  savepoint.opened++
}
