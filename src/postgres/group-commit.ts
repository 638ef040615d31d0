import type { Pool, PoolClient } from 'pg'
import type { AnyEvent } from '../core/events.js'
import type { AcceptOutcome } from '../core/inbox.js'
import { hearErrors } from './client-errors.js'
import type { Queries } from './queries.js'

interface Waiting {
  event: AnyEvent
  receivedAt: number
  arrivedAt: number
  resolve: (outcome: AcceptOutcome) => void
}

export interface GroupCommitOptions {
  groupCommitMs: number
  acceptTimeoutMs: number
}

export interface GroupCommitEvents {
  /** A batch committed: the ids `inserted` are new in the table. */
  committed (inserted: ReadonlySet<string>): void
  /** A batch was not recorded; its deliveries got 'unavailable'. `inDoubt`: the commit was sent and its answer never came. */
  failed (error: unknown, deliveries: number, inDoubt: boolean): void
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
 * the INSERT added, `duplicate` for one already there. A batch that cannot
 * commit by its first delivery's deadline is rolled back and every delivery in
 * it gets `unavailable`: a 503 records nothing.
 */
export class GroupCommit {
  readonly #pool: Pool
  readonly #sql: Queries
  readonly #options: GroupCommitOptions
  readonly #events: GroupCommitEvents
  #waiting: Waiting[] = []
  #timer: NodeJS.Timeout | undefined
  readonly #inFlight = new Set<Promise<void>>()

  constructor (pool: Pool, sql: Queries, options: GroupCommitOptions, events: GroupCommitEvents) {
    this.#pool = pool
    this.#sql = sql
    this.#options = options
    this.#events = events
  }

  add (event: AnyEvent, receivedAt: number): Promise<AcceptOutcome> {
    return new Promise((resolve) => {
      this.#waiting.push({ event, receivedAt, arrivedAt: Date.now(), resolve })
      if (this.#waiting.length >= MAX_BATCH) this.#flush()
      else this.#timer ??= setTimeout(() => { this.#flush() }, this.#options.groupCommitMs)
    })
  }

  /** Resolves once every batch sent so far has settled. */
  async settled (): Promise<void> {
    while (this.#waiting.length > 0 || this.#inFlight.size > 0) {
      this.#flush()
      await Promise.all([...this.#inFlight])
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
      this.#inFlight.add(flight)
    }
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
    let inDoubtTimer: NodeJS.Timeout | undefined
    const deadline = batch[0]!.arrivedAt + this.#options.acceptTimeoutMs
    const deadlineTimer = setTimeout(() => {
      if (!committing) {
        late = true
        answerAll(() => 'unavailable')
        this.#events.failed(new Error(`the batch was not committed within acceptTimeoutMs (${this.#options.acceptTimeoutMs} ms)`), batch.length, false)
        return
      }
      // The COMMIT is on its way: its answer decides. Only a store that does not
      // answer it at all turns the wait into a 503, with the event possibly recorded.
      inDoubtTimer = setTimeout(() => {
        answerAll(() => 'unavailable')
        this.#events.failed(new Error('no answer to COMMIT within acceptTimeoutMs'), batch.length, true)
      }, this.#options.acceptTimeoutMs)
    }, Math.max(0, deadline - Date.now()))
    let client: PoolClient | undefined
    let broken: Error | undefined
    let stopHearing = (): void => {}
    try {
      client = await this.#pool.connect()
      stopHearing = hearErrors(client, (error) => { broken ??= error })
      if (late) return
      await client.query('BEGIN')
      const { rows } = await client.query<{ id: string }>(this.#sql.acceptBatch, [
        batch.map(({ event }) => event.id),
        batch.map(({ event }) => event.type),
        batch.map(({ event }) => JSON.stringify(event)),
        batch.map(({ receivedAt }) => receivedAt)
      ])
      // Answered 503 while the INSERT ran: roll back, so that a 503 records nothing.
      if (late) {
        await client.query('ROLLBACK')
        return
      }
      committing = true
      await client.query('COMMIT')
      const inserted = new Set(rows.map(({ id }) => id))
      const first = new Map<string, number>()
      batch.forEach(({ event }, index) => { if (!first.has(event.id)) first.set(event.id, index) })
      // Two deliveries of one id in one batch: the first is the one accepted.
      answerAll(({ event }, index) => inserted.has(event.id) && first.get(event.id) === index ? 'accepted' : 'duplicate')
      this.#events.committed(inserted)
    } catch (error) {
      broken ??= error instanceof Error ? error : new Error(String(error))
      if (!committing) await client?.query('ROLLBACK').catch(() => {})
      if (!answered) {
        answerAll(() => 'unavailable')
        this.#events.failed(error, batch.length, committing)
      }
    } finally {
      clearTimeout(deadlineTimer)
      clearTimeout(inDoubtTimer)
      stopHearing()
      // A client whose query failed may be mid-protocol: it is discarded, not reused.
      client?.release(broken)
    }
  }
}
