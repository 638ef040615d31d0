import type { Pool, PoolClient, QueryResult } from 'pg'
import type { ClaimedRow } from './queries.js'
import { runClaimedEvent, type RunEnvironment } from './run-event.js'

export interface WorkerEnvironment extends RunEnvironment {
  pool: Pool
  /** Workers at most, each with one pool client. */
  slots: number
  /** A claim or an outcome could not be written; the event runs again. */
  failed (error: unknown): void
  /** A claim or an outcome was written. */
  succeeded (): void
  /** A retry is due in `ms`: look for work then. */
  wakeIn (ms: number): void
}

interface Slot {
  client: PoolClient | undefined
  /** The client was handed back by force at close; the worker must not release it again. */
  forced: boolean
}

/**
 * The workers that run events. Each holds one pool client and loops: BEGIN,
 * claim the oldest due event with `FOR NO KEY UPDATE SKIP LOCKED`, run it,
 * commit, and again until nothing is due. The claim is the transaction's row
 * lock, so two workers (in this process or another) never hold one event, and a
 * worker that dies, with its process or its connection, holds nothing: Postgres
 * rolls its transaction back and the event is due again at once.
 */
export class Workers {
  readonly #env: WorkerEnvironment
  readonly #active = new Set<Slot>()
  #searching = 0
  #wakeRequested = false
  #stopped = false
  #whenIdle: (() => void) | undefined

  constructor (env: WorkerEnvironment) {
    this.#env = env
  }

  /**
   * Looks for work: starts a worker unless one is already looking (it will look
   * again when it finds nothing) or every worker is busy (each looks again when
   * it finishes its event).
   */
  wake (): void {
    if (this.#stopped) return
    if (this.#searching > 0) {
      this.#wakeRequested = true
      return
    }
    // An accept-only process claims nothing; the poll wakes it again once handlers exist.
    if (this.#active.size >= this.#env.slots || !this.#env.runtime.hasHandlers) return
    const slot: Slot = { client: undefined, forced: false }
    this.#active.add(slot)
    void this.#work(slot)
  }

  /** No new claims; events running go on. */
  stop (): void {
    this.#stopped = true
  }

  /** Resolves when no worker runs, or calls back at once when none does. */
  onIdle (callback: () => void): void {
    if (this.#active.size === 0) callback()
    else this.#whenIdle = callback
  }

  /**
   * Ends the connections of workers still running after the grace period: their
   * transactions roll back, nothing of their attempt is kept, and their events
   * are free for another instance now, while their handlers here are told to stop.
   */
  releaseByForce (): number {
    let count = 0
    for (const slot of this.#active) {
      if (slot.client === undefined || slot.forced) continue
      slot.forced = true
      slot.client.release(new Error('sir-webhooks: the receiver closed while this handler ran'))
      count++
    }
    return count
  }

  async #work (slot: Slot): Promise<void> {
    const env = this.#env
    let broken: Error | undefined
    let searching = false
    try {
      slot.client = await env.pool.connect()
      while (!this.#stopped) {
        searching = true
        this.#searching++
        this.#wakeRequested = false
        const row = await this.#claim(slot.client)
        this.#searching--
        searching = false
        if (row === undefined) {
          if (this.#wakeRequested && !this.#stopped) continue
          break
        }
        // There may be more: another worker looks while this one runs the event.
        this.wake()
        const end = await runClaimedEvent(env, slot.client, row)
        env.succeeded()
        if (end.retryInMs !== undefined) env.wakeIn(end.retryInMs)
      }
    } catch (error) {
      broken = error instanceof Error ? error : new Error(String(error))
      if (!slot.forced) env.failed(error)
    } finally {
      if (searching) this.#searching--
      // A client whose transaction broke is discarded, not reused: Postgres rolls
      // back whatever it left open when the connection ends.
      if (!slot.forced) slot.client?.release(broken)
      this.#active.delete(slot)
      if (this.#active.size === 0) this.#whenIdle?.()
    }
  }

  async #claim (client: PoolClient): Promise<ClaimedRow | undefined> {
    // Several statements in one query: pg answers with one result per statement.
    const results = await client.query(this.#env.sql.beginAndClaim(this.#env.now())) as unknown as Array<QueryResult<ClaimedRow>>
    const row = results.find((result) => result.command === 'SELECT')?.rows[0]
    if (row === undefined) await client.query('ROLLBACK')
    return row
  }
}
