import type { Pool, PoolClient } from 'pg'
import type { AnyEvent } from '../core/events.js'
import type { AcceptOutcome } from '../core/inbox.js'
import { BatchAbandoned, insertRows, type BatchRow } from './accept-batch.js'
import { hearErrors } from './client-errors.js'
import type { Queries } from './queries.js'
import { bodyText, storedKey } from './stored-text.js'

interface Waiting extends BatchRow {
  event: AnyEvent
  /** When accept() was called: the delivery is answered by this + acceptTimeoutMs, whatever the store does. */
  deadline: number
  resolve: (outcome: AcceptOutcome) => void
}

export interface GroupCommitOptions {
  groupCommitMs: number
  acceptTimeoutMs: number
  /** The statement that opens a batch's transaction (with its session limits). */
  begin: string
  /** The event's place in its ordering key (the engine's `refFor`), stored with it; absent without the `ordering` option. */
  orderingOf?: (event: AnyEvent, receivedAt: number) => BatchRow['ordered'] | undefined
}

export interface GroupCommitEvents {
  /** A batch committed: the ids (as stored) `inserted` are new in the table; its first delivery waited `waitedMs` since accept(). */
  committed (inserted: ReadonlySet<string>, waitedMs: number): void
  /** Deliveries were not recorded and got 'unavailable'. `inDoubt`: the commit was sent and its answer never came. */
  failed (error: unknown, deliveries: number, inDoubt: boolean): void
  /** The database refused one event's row on its own; its delivery got 'unavailable', its batch-mates were recorded. */
  rowFailed (error: unknown, event: AnyEvent): void
}

/** Rows per INSERT: past a few hundred, a bigger batch saves nothing and holds its first delivery longer. */
const MAX_BATCH = 500
/** Batches committing at once. Each holds a pool client; the rest of the pool runs handlers. */
export const MAX_IN_FLIGHT = 3

/**
 * Group commit for accepts. Deliveries that arrive together wait up to
 * `groupCommitMs` (and while every slot is busy) to share one multi-row INSERT
 * and one commit, so that 50 concurrent senders cost a few fsyncs, not 50.
 * Each delivery is answered only once its batch committed: `accepted` for an id
 * the INSERT added, `duplicate` for one already there (`duplicate-differs` when
 * its body is not the stored one). A row the database refuses on its own is
 * answered `unavailable` and the others are recorded without it. Every delivery
 * is answered by `acceptTimeoutMs` after accept() was called, waiting in line
 * included: one whose batch has not committed by then gets `unavailable`, its
 * batch is rolled back when it can be (a 503 records nothing), and a COMMIT
 * sent but unanswered by then leaves it in doubt.
 */
export class GroupCommit {
  readonly #pool: Pool
  readonly #sql: Queries
  readonly #options: GroupCommitOptions
  readonly #events: GroupCommitEvents
  #waiting: Waiting[] = []
  #timer: NodeJS.Timeout | undefined
  /** Answers 503 to deliveries whose deadline passed in line (every slot busy with a stalled store). */
  #expiry: NodeJS.Timeout | undefined
  /** The batches committing, each with when its first delivery's accept() was called. */
  readonly #inFlight = new Map<Promise<void>, number>()

  constructor (pool: Pool, sql: Queries, options: GroupCommitOptions, events: GroupCommitEvents) {
    this.#pool = pool
    this.#sql = sql
    this.#options = options
    this.#events = events
  }

  /** `calledAt`: when accept() was called (Date.now()), if it waited before coming here. */
  add (event: AnyEvent, receivedAt: number, rawBody: Uint8Array | undefined, calledAt = Date.now()): Promise<AcceptOutcome> {
    return new Promise((resolve) => {
      const deadline = calledAt + this.#options.acceptTimeoutMs
      const ordered = this.#options.orderingOf?.(event, receivedAt) ?? null
      this.#waiting.push({ event, key: storedKey(event.id), type: storedKey(event.type), body: bodyText(event, rawBody), receivedAt, ordered, deadline, resolve })
      if (this.#waiting.length >= MAX_BATCH) this.#flush()
      else this.#timer ??= setTimeout(() => { this.#flush() }, this.#options.groupCommitMs)
      this.#armExpiry()
    })
  }

  /** When the accept that has waited longest for its commit, of those not answered yet, was called; undefined when none waits. */
  oldestWaitingSince (): number | undefined {
    let oldest = this.#waiting[0] === undefined ? undefined : this.#calledAt(this.#waiting[0])
    for (const since of this.#inFlight.values()) oldest = Math.min(oldest ?? since, since)
    return oldest
  }

  /** Resolves once every batch sent so far has settled. */
  async settled (): Promise<void> {
    while (this.#waiting.length > 0 || this.#inFlight.size > 0) {
      this.#flush()
      await Promise.all([...this.#inFlight.keys()])
    }
  }

  #flush (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    while (this.#waiting.length > 0 && this.#inFlight.size < MAX_IN_FLIGHT) {
      const batch = this.#waiting.splice(0, MAX_BATCH)
      const flight = this.#commit(batch).finally(() => {
        this.#inFlight.delete(flight)
        // Deliveries that queued behind a full set of slots go now, not after another wait.
        if (this.#waiting.length > 0) this.#flush()
      })
      this.#inFlight.set(flight, this.#calledAt(batch[0]!))
    }
    // Nothing left in line: no sweep to wait for (nor a timer holding the process open after close).
    if (this.#waiting.length === 0) {
      clearTimeout(this.#expiry)
      this.#expiry = undefined
    }
  }

  /** When the delivery's accept() was called: its deadline less acceptTimeoutMs. */
  #calledAt (waiting: Waiting): number {
    return waiting.deadline - this.#options.acceptTimeoutMs
  }

  /** The line is in arrival order: its head is the next to expire. */
  #armExpiry (): void {
    const head = this.#waiting[0]
    if (this.#expiry !== undefined || head === undefined) return
    this.#expiry = setTimeout(() => {
      this.#expiry = undefined
      const now = Date.now()
      let expired = 0
      while (this.#waiting[0] !== undefined && this.#waiting[0].deadline <= now) {
        this.#waiting.shift()!.resolve('unavailable')
        expired++
      }
      if (expired > 0) this.#events.failed(new Error(`every batch slot stayed busy for acceptTimeoutMs (${this.#options.acceptTimeoutMs} ms)`), expired, false)
      this.#armExpiry()
    }, Math.max(0, head.deadline - Date.now()))
  }

  async #commit (batch: Waiting[]): Promise<void> {
    let answered = false
    const answerAll = (outcome: (waiting: Waiting, index: number) => AcceptOutcome): void => {
      if (answered) return
      answered = true
      batch.forEach((waiting, index) => { waiting.resolve(outcome(waiting, index)) })
    }
    let committing = false
    let late = false
    // The batch's first delivery came first: its deadline is the batch's.
    const deadlineTimer = setTimeout(() => {
      late = true
      // A COMMIT on its way may still succeed: the deliveries are in doubt, and a
      // retry is then answered as a duplicate. A store that answers in time decides.
      answerAll(() => 'unavailable')
      this.#events.failed(new Error(committing
        ? `no answer to COMMIT within acceptTimeoutMs (${this.#options.acceptTimeoutMs} ms)`
        : `the batch was not committed within acceptTimeoutMs (${this.#options.acceptTimeoutMs} ms)`), batch.length, committing)
    }, Math.max(0, batch[0]!.deadline - Date.now()))
    let client: PoolClient | undefined
    let broken: Error | undefined
    let stopHearing = (): void => {}
    try {
      client = await this.#pool.connect()
      stopHearing = hearErrors(client, (error) => { broken ??= error })
      if (late) return
      await client.query(this.#options.begin)
      const results = await insertRows(client, this.#sql, batch, `ROLLBACK; ${this.#options.begin}`, () => !late)
      // Answered 503 while the INSERT ran: roll back, so that a 503 records nothing.
      if (late) {
        await client.query('ROLLBACK')
        return
      }
      committing = true
      await client.query('COMMIT')
      clearTimeout(deadlineTimer)
      const inserted = new Set<string>()
      const outcomes = batch.map((waiting, index): AcceptOutcome => {
        const result = results[index]!
        if (typeof result !== 'string') {
          this.#events.rowFailed(result.failed, waiting.event)
          return 'unavailable'
        }
        if (result === 'accepted') inserted.add(waiting.key)
        return result
      })
      answerAll((_, index) => outcomes[index]!)
      // Also after a late answer: the rows are there, and the workers can run them now.
      this.#events.committed(inserted, Date.now() - this.#calledAt(batch[0]!))
    } catch (error) {
      if (!(error instanceof BatchAbandoned)) broken ??= error instanceof Error ? error : new Error(String(error))
      if (!committing) await client?.query('ROLLBACK').catch(() => {})
      if (!answered) {
        answered = true
        batch.forEach(({ resolve }) => { resolve('unavailable') })
        this.#events.failed(error, batch.length, committing)
      }
    } finally {
      clearTimeout(deadlineTimer)
      stopHearing()
      // A client whose query failed may be mid-protocol: it is discarded, not reused.
      client?.release(broken)
    }
  }
}
