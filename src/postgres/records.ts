import type { Pool } from 'pg'
import type { PurgeOptions, PurgeResult } from '../core/inbox.js'
import { countsByState, type DeadLetterQuery, type EventOutcome, type OutcomeState } from '../core/outcome.js'
import type { ResolvedOptions } from '../core/resolved-options.js'
import { purgeCutoffs } from '../core/retention.js'
import type { ResolvedPostgresOptions } from './options.js'
import { toOutcome } from './event-record.js'
import type { EventRow, Queries } from './queries.js'
import { storedKey } from './stored-text.js'

export interface RecordsEnvironment {
  sql: Queries
  options: ResolvedPostgresOptions
  /** The pool to query: the running one, or one for an admin script before start. */
  pool (): Promise<Pool>
  now (): number
  receiver (): ResolvedOptions | undefined
}

/**
 * What operators read and change in the table (`sir-webhooks inbox`, admin
 * scripts): outcomes with the body as received, dead letters, redrives, counts
 * and purges. Ids are looked up as stored (stored-text.ts).
 */
export class Records {
  readonly #env: RecordsEnvironment

  constructor (env: RecordsEnvironment) {
    this.#env = env
  }

  async outcome (id: string): Promise<EventOutcome | undefined> {
    const { rows } = await (await this.#env.pool()).query<EventRow>(this.#env.sql.outcome, [storedKey(id)])
    return rows[0] === undefined ? undefined : toOutcome(rows[0])
  }

  async deadLetters (query: DeadLetterQuery): Promise<EventOutcome[]> {
    const { rows } = await (await this.#env.pool()).query<EventRow>(this.#env.sql.deadLetters, [query.limit ?? 100])
    return rows.map(toOutcome)
  }

  async redrive (id: string): Promise<boolean> {
    const { sql } = this.#env
    const { rowCount } = await (await this.#env.pool()).query(sql.redrive, [storedKey(id), this.#env.now(), sql.wakeChannel])
    return rowCount === 1
  }

  async counts (): Promise<Record<OutcomeState, number>> {
    const { rows } = await (await this.#env.pool()).query<{ state: OutcomeState, count: string }>(this.#env.sql.countByState)
    return countsByState(rows)
  }

  async purge (options: PurgeOptions): Promise<PurgeResult> {
    const pool = await this.#env.pool()
    const cutoffs = purgeCutoffs(this.#env.now(), options, this.#env.options, this.#env.receiver())
    const purge = async (state: 'done' | 'dead', before: number): Promise<number> =>
      (await pool.query<{ purged: number }>(options.dryRun === true ? this.#env.sql.countPurgeable : this.#env.sql.purge, [state, before])).rows[0]?.purged ?? 0
    const done = await purge('done', cutoffs.done)
    const dead = cutoffs.dead === undefined ? 0 : await purge('dead', cutoffs.dead)
    return { done, dead }
  }
}
