import type { PoolClient } from 'pg'
import type { Queries } from './queries.js'

/** One delivery of a batch, as it is stored. */
export interface BatchRow {
  /** The id as stored (stored-text.ts). */
  key: string
  type: string
  /** The body as received. */
  body: string
  receivedAt: number
  /** Its place in its ordering key (the receiver's `ordering` option), or null for an event without a key. */
  ordered: { key: string, createdAt: number, notBefore: number } | null
}

/** What became of one row: recorded now, already there (with the same body or not), or refused by the database on its own. */
export type RowResult = 'accepted' | 'duplicate' | 'duplicate-differs' | { failed: unknown }

/**
 * An error that one row's values can cause, so that the same INSERT without that
 * row may succeed: a data exception (22), a constraint (23, a user's CHECK or
 * trigger), a program limit such as an index row too large for a long id (54),
 * a trigger's RAISE (P0). Anything else (the connection, a missing table, a
 * timeout) would fail every row alike, and fails the batch.
 */
export function isRowError (error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^(22|23|54|P0)/.test(code)
}

/** The batch gave up: its deadline passed while rows were being isolated. */
export class BatchAbandoned extends Error {}

/**
 * Inserts `rows` in the transaction open on `client` and says what became of
 * each. The batch goes in one INSERT; when a row makes it fail, the transaction
 * is begun again (`restart`) and the rows are inserted in halves, each in a
 * savepoint, down to the row that fails on its own: one bad event costs its
 * batch-mates a few statements, never their 2xx. A duplicate's body is compared
 * with the stored one, in one more statement, only when there are duplicates.
 * `wanted()` false stops the isolation (the deadline passed): `BatchAbandoned`.
 */
export async function insertRows (client: PoolClient, sql: Queries, rows: readonly BatchRow[], restart: string, wanted: () => boolean): Promise<RowResult[]> {
  const inserted = new Set<string>()
  const failed = new Map<number, unknown>()
  const insert = async (indexes: readonly number[]): Promise<void> => {
    const part = indexes.map((index) => rows[index]!)
    const result = await client.query<{ id: string }>(sql.acceptBatch, [
      part.map(({ key }) => key),
      part.map(({ type }) => type),
      part.map(({ body }) => body),
      part.map(({ receivedAt }) => receivedAt),
      part.map(({ ordered }) => ordered?.key ?? null),
      part.map(({ ordered }) => ordered?.createdAt ?? null),
      part.map(({ receivedAt, ordered }) => ordered?.notBefore ?? receivedAt)
    ])
    for (const { id } of result.rows) inserted.add(id)
  }
  const isolate = async (indexes: readonly number[]): Promise<void> => {
    if (!wanted()) throw new BatchAbandoned()
    await client.query('SAVEPOINT sir_accept')
    try {
      await insert(indexes)
      await client.query('RELEASE SAVEPOINT sir_accept')
    } catch (error) {
      if (!isRowError(error)) throw error
      await client.query('ROLLBACK TO SAVEPOINT sir_accept; RELEASE SAVEPOINT sir_accept')
      if (indexes.length === 1) {
        failed.set(indexes[0]!, error)
        return
      }
      const half = Math.ceil(indexes.length / 2)
      await isolate(indexes.slice(0, half))
      await isolate(indexes.slice(half))
    }
  }
  const all = rows.map((_, index) => index)
  try {
    await insert(all)
  } catch (error) {
    if (!isRowError(error)) throw error
    await client.query(restart)
    if (rows.length === 1) {
      failed.set(0, error)
    } else {
      const half = Math.ceil(all.length / 2)
      await isolate(all.slice(0, half))
      await isolate(all.slice(half))
    }
  }
  return await resultsOf(client, sql, rows, inserted, failed)
}

/**
 * Each row's answer. Of the rows of one id that the table took, the first is
 * the one accepted and the others are duplicates, as are rows whose id was
 * there before; those are checked against the stored body.
 */
async function resultsOf (client: PoolClient, sql: Queries, rows: readonly BatchRow[], inserted: ReadonlySet<string>, failed: ReadonlyMap<number, unknown>): Promise<RowResult[]> {
  const first = new Map<string, number>()
  rows.forEach(({ key }, index) => { if (!failed.has(index) && !first.has(key)) first.set(key, index) })
  const results: RowResult[] = rows.map(({ key }, index) => failed.has(index)
    ? { failed: failed.get(index) }
    : inserted.has(key) && first.get(key) === index ? 'accepted' : 'duplicate')
  const duplicates = rows.flatMap((row, index) => results[index] === 'duplicate' ? [{ row, index }] : [])
  if (duplicates.length === 0) return results
  // Per row, not per id: one id can come twice in a batch with two bodies.
  const { rows: differing } = await client.query<{ position: string }>(sql.bodiesDiffer, [duplicates.map(({ row }) => row.key), duplicates.map(({ row }) => row.body)])
  for (const { position } of differing) results[duplicates[Number(position) - 1]!.index] = 'duplicate-differs'
  return results
}
