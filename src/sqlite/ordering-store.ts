import type BetterSqlite3 from 'better-sqlite3'
import type { BlockedKey, OrderedEventRef, OrderingKeyCounts, OrderingStore, TakeAnswer } from '../core/ordering/store.js'
import type { GroupCommit } from './group-commit.js'
import { idFromKey, idKey } from './ids.js'
import { MAY_TAKE_KEY } from './ordering-schema.js'
import type { Statements } from './schema.js'

export interface SqliteOrderingParts {
  db: BetterSqlite3.Database
  sql: Statements
  writer: GroupCommit
  /** Tells the runner a key moved on. */
  onUnblock: () => void
}

/**
 * Ordering kept in the SQLite file, shared by every process on it
 * (docs/design.md, "Ordering"). The runner does not ask `take`: its claim is the
 * take, in the claim's own write transaction (MAY_TAKE_KEY). The statement that
 * records an ordered event's outcome releases its key, and `block` takes it back
 * in the same transaction; the key's newest handled createdAt is read from its
 * done events. So a key never disagrees with the event rows, whatever process
 * dies when. `enqueue` is the accept's insert.
 */
export class SqliteOrderingStore implements OrderingStore {
  readonly scope = 'the SQLite file'
  readonly #parts: SqliteOrderingParts
  readonly #mayTake: BetterSqlite3.Statement<[{ id: string | Buffer, takeKeys: 1 }], { ok: number }>
  #counts: OrderingKeyCounts = { waiting: 0, blocked: 0 }

  constructor (parts: SqliteOrderingParts) {
    this.#parts = parts
    this.#mayTake = parts.db.prepare(`SELECT ${MAY_TAKE_KEY} AS ok FROM sir_webhook_events e WHERE e.id = @id AND e.state = 'pending'`)
  }

  /** The accept's own insert wrote the key and createdAt (accept.ts): nothing more to do. */
  enqueue (_ref: OrderedEventRef): void {}

  /** For callers other than the runner: the same rule as the claim, in one write transaction. */
  take (ref: OrderedEventRef, now: number): TakeAnswer {
    const { db, sql } = this.#parts
    return db.transaction((): TakeAnswer => {
      const id = idKey(ref.id)
      const row = sql.get.get(id)
      if (row === undefined || row.state === 'done') return { taken: false, wait: 'behind' }
      if (row.holds_key !== 1) {
        if (sql.ordering.blocked.all().some((blocked) => blocked.key === ref.key)) return { taken: false, wait: 'blocked' }
        if (this.#mayTake.get({ id, takeKeys: 1 })?.ok !== 1) return { taken: false, wait: 'busy' }
      }
      if (row.next_attempt_at > now) return { taken: false, wait: 'held', retryInMs: row.next_attempt_at - now }
      sql.ordering.hold.run(id)
      return { taken: true, newestHandledAt: this.newestHandledAt(ref.key) }
    }).immediate()
  }

  newestHandledAt (key: string): number | undefined {
    return this.#parts.sql.ordering.newest.get(key) ?? undefined
  }

  /**
   * Nothing left to do: the outcome's own statement (schema.ts, `finish`) let the
   * key go, and the event, now done, is its key's newest handled if it is newer.
   */
  release (_ref: OrderedEventRef, _handledCreatedAt: number | undefined): void {}

  /** Synchronous, in the dead-lettering transaction, after `finish` let the key go: the dead event holds it again. */
  block (ref: OrderedEventRef, _now: number): void {
    this.#parts.sql.ordering.hold.run(idKey(ref.id))
  }

  async unblock (key: string): Promise<boolean> {
    const { writer, sql } = this.#parts
    const changed = await writer.write(() => sql.ordering.unblock.run({ key }).changes, { durable: true, deadline: Date.now() + 5_000 })
    if (changed > 0) this.#parts.onUnblock()
    return changed > 0
  }

  async blocked (): Promise<BlockedKey[]> {
    return this.#parts.sql.ordering.blocked.all().map((row) => ({ key: row.key, eventId: idFromKey(row.id), since: new Date(row.since) }))
  }

  /**
   * Across every process on the file, read when asked: better-sqlite3 answers
   * synchronously, and two scans of partial indexes (ordered events not yet
   * done, blocking dead ones) cost less than a stale answer. A closed file
   * answers what it last knew.
   */
  counts (): OrderingKeyCounts {
    try {
      const { sql } = this.#parts
      this.#counts = { waiting: sql.ordering.waitingKeys.get() ?? 0, blocked: sql.ordering.blockedKeys.get() ?? 0 }
    } catch {
      // Closed, or the file is gone: the last counts stand.
    }
    return this.#counts
  }

}
