import type { Pool, PoolClient, QueryResult } from 'pg'
import type { Candidates } from './candidates.js'
import { hearErrors } from './client-errors.js'
import { literalsOf, type ClaimedRow } from './queries.js'
import { runClaimedBatch, type NextHead, type RunEnvironment } from './run-event.js'
import { eventOf } from './stored-text.js'

/** Due ids one scan of the table asks for. */
const SCAN_LIMIT = 200
/**
 * Events claimed and committed together at most. A backlog is shared out among
 * the workers in batches up to this size: one claim and one COMMIT for them
 * all. In the inbox benchmark, alternating runs, 24 acknowledged a median of
 * 3 983/s where 8 gave 3 738 (the savepoints, one per handler, are capped in
 * run-event.ts).
 */
const MAX_BATCH = 24
/** After a batch failed (the connection, the store), how long until workers look in the table again. */
const RETRY_AFTER_FAILURE_MS = 1_000
/** A batch starts no event after this long, so that slow handlers' finished work is not held uncommitted. */
const BATCH_BUDGET_MS = 50

export interface WorkerEnvironment extends RunEnvironment {
  pool: Pool
  /** What to try to claim next; the inbox adds its accepts' ids and asks for scans. */
  candidates: Candidates
  /** Workers at most, each with one pool client. */
  slots: number
  /** Workers allowed now (core/accept-priority.ts): fewer while accepts wait on the database. */
  allowed: () => number
  /** A claim or an outcome could not be written; the event runs again. */
  failed (error: unknown): void
  /** A claim or an outcome was written; `finished` events are now done or dead. */
  succeeded (finished: number): void
  /** A retry is due in `ms`: look for work then. */
  wakeIn (ms: number): void
}

interface Slot {
  client: PoolClient | undefined
  /** The client was handed back by force at close; the worker must not release it again. */
  forced: boolean
}

/**
 * The workers that run events. Each holds one pool client and loops: take
 * candidate ids (scanning the table for due ones when `Candidates` says a scan
 * is due), BEGIN, claim those still pending and due with `FOR NO KEY UPDATE
 * SKIP LOCKED`, run them, commit, and again until nothing is due. The claim is
 * the transaction's row lock, so two workers (in this process or another) never
 * hold one event, and a worker that dies, with its process or its connection,
 * holds nothing: Postgres rolls its transaction back and the event is due again
 * at once.
 */
export class Workers {
  readonly #env: WorkerEnvironment
  readonly #active = new Set<Slot>()
  #searching = 0
  /** Ids being run here: a scan lists them (their rows are locked, not finished) and they are not tried again. */
  readonly #running = new Set<string>()
  #scan: Promise<void> | undefined
  #wakeRequested = false
  #stopped = false
  #whenIdle: (() => void) | undefined

  constructor (env: WorkerEnvironment) {
    this.#env = env
  }

  get #ordered (): boolean {
    return this.#env.orderingSql !== undefined && this.#env.runtime.ordering !== undefined
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
    if (this.#active.size >= Math.min(this.#env.slots, this.#env.allowed()) || !this.#env.runtime.hasHandlers) return
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
    let gaveWay = false
    let stopHearing = (): void => {}
    try {
      slot.client = await env.pool.connect()
      stopHearing = hearErrors(slot.client, (error) => { broken ??= error })
      while (!this.#stopped) {
        // Accepts wait on the database: this worker gives way (the others go on).
        if (this.#active.size > this.#env.allowed()) {
          gaveWay = true
          break
        }
        searching = true
        this.#searching++
        this.#wakeRequested = false
        const rows = await this.#search(slot.client)
        this.#searching--
        searching = false
        if (rows.length === 0) {
          if (this.#wakeRequested && !this.#stopped) continue
          break
        }
        // There may be more: another worker looks while this one runs the batch.
        this.wake()
        for (const row of rows) this.#running.add(row.id)
        const end = await runClaimedBatch(env, slot.client, rows, BATCH_BUDGET_MS).finally(() => {
          for (const row of rows) this.#running.delete(row.id)
        })
        env.succeeded(end.finished)
        if (end.unrun.length > 0) env.candidates.putBack(end.unrun.map(({ id }) => id))
        for (const ms of end.retriesInMs) env.wakeIn(ms)
        if (end.nextHeads.length > 0) this.#nextHeads(end.nextHeads)
      }
    } catch (error) {
      broken = error instanceof Error ? error : new Error(String(error))
      if (!slot.forced) {
        env.failed(error)
        // The batch's events are pending again and no longer on the list of ids
        // to try: look for them in the table once the store may be back.
        env.wakeIn(RETRY_AFTER_FAILURE_MS)
      }
    } finally {
      if (searching) this.#searching--
      stopHearing()
      // A client whose transaction broke is discarded, not reused: Postgres rolls
      // back whatever it left open when the connection ends.
      if (!slot.forced) slot.client?.release(broken)
      this.#active.delete(slot)
      // A worker that gave way (accept priority) may leave ids it put back and a
      // search that found nothing just before: someone must look at them. Not
      // after a failure, which looks again after RETRY_AFTER_FAILURE_MS.
      if (gaveWay && !this.#stopped && env.candidates.size > 0) this.wake()
      if (this.#active.size === 0) this.#whenIdle?.()
    }
  }

  /** The next events claimed on `client`, or none when nothing is due. */
  async #search (client: PoolClient): Promise<ClaimedRow[]> {
    const { candidates } = this.#env
    let scanned = false
    // Once per search, and again when a scan was asked for while the one this
    // worker waited on ran (it may have started before what the request is for).
    const scanNow = (): boolean => candidates.scanRequested || (!scanned && candidates.scanDue)
    for (;;) {
      if (scanNow()) {
        scanned = true
        // One scan at a time; workers searching meanwhile take from its result.
        this.#scan ??= this.#scanFor(client).finally(() => { this.#scan = undefined })
        await this.#scan
      }
      // A fair share of what is waiting: one event each when little is, a batch when a backlog built.
      const size = Math.min(MAX_BATCH, Math.max(1, Math.ceil(candidates.size / this.#env.slots)))
      const ids: string[] = []
      while (ids.length < size) {
        const id = candidates.take()
        if (id === undefined) break
        if (!this.#running.has(id)) ids.push(id)
      }
      if (ids.length === 0) {
        if (scanNow()) continue
        return []
      }
      const rows = await this.#claim(client, ids)
      candidates.claimed(ids, new Set(rows.map(({ id }) => id)))
      if (rows.length > 0) return rows
    }
  }

  /**
   * The next heads of the keys this worker's commit freed (read in that commit):
   * they go first in line (a claim of theirs made while the key was held failed
   * and dropped them), or, still held or backing off, are looked for when due.
   */
  #nextHeads (rows: readonly NextHead[]): void {
    const now = this.#env.now()
    const due = rows.filter((row) => Number(row.next_attempt_at) <= now).map(({ id }) => id)
    if (due.length > 0) {
      this.#env.candidates.putBack(due)
      this.wake()
    }
    for (const row of rows) if (Number(row.next_attempt_at) > now) this.#env.wakeIn(Number(row.next_attempt_at) - now)
  }

  async #scanFor (client: PoolClient): Promise<void> {
    const { candidates, sql } = this.#env
    candidates.scanStarted()
    const { rows } = await client.query<{ id: string }>(this.#ordered ? sql.dueIdsOrdered : sql.dueIds, [Math.floor(this.#env.now()), SCAN_LIMIT, [...this.#running]])
    candidates.addScanned(rows.map(({ id }) => id), SCAN_LIMIT, this.#running)
  }

  async #claim (client: PoolClient, ids: readonly string[]): Promise<ClaimedRow[]> {
    // Several statements in one query: pg answers with one result per statement.
    const results = await client.query(this.#env.sql.beginAndClaim(literalsOf(client), ids, this.#env.now(), this.#ordered)) as unknown as Array<QueryResult<ClaimedRow>>
    // Several results (BEGIN, SET, the claim, SAVEPOINT): the claim's rows are those of its SELECT.
    const rows = results.filter((result) => result.command === 'SELECT').flatMap((result) => result.rows)
    if (rows.length === 0) await client.query('ROLLBACK')
    for (const row of rows) row.event = eventOf(row.body)
    return rows
  }
}
