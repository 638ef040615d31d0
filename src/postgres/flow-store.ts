// Flow control's state for the Postgres inbox, kept in the inbox's schema so that
// every receiver on it shares one rate, one concurrency and one pause: a token
// bucket row per handler (one statement, on the server's clock), advisory locks
// as run slots, and a table of what is paused, heard through LISTEN/NOTIFY.
import type { RateLimit } from '../core/flow/limits.js'
import { leaseOnce, type FlowStore, type PauseState, type SlotLease } from '../core/flow/store.js'
import type { QueryResult, QueryResultRow } from 'pg'
import { withDeadline } from '../core/timeouts.js'
import type { ControlConnection } from './control-connection.js'
import { quoted } from './schema.js'

/** How often the pause state is read again, should a notification have been lost. */
export const PAUSE_REFRESH_MS = 500

/** How long a pause() or resume() made while the inbox starts waits for its tables before it throws. */
const PAUSE_WAITS_FOR_START_MS = 10_000

/** The pause table's row for `pause()` without a name: no handler name is empty. */
const ALL = ''

/** What the pause table is read and written through: the control connection, or a pool. */
export interface Queryable {
  query: <Row extends QueryResultRow>(text: string, values?: unknown[]) => Promise<QueryResult<Row>>
}

export interface FlowStoreEnvironment {
  schema: string
  /** The channel every receiver on the schema listens on for due events (queries.ts). */
  wakeChannel: string
  /** The control connection once the inbox has reached its tables, else undefined. */
  control (): ControlConnection | undefined
  /**
   * In an inbox never started (the CLI's `inbox pause|resume|stats`): a pool to
   * write and read the pause table with. Undefined once start() has run.
   */
  unstarted?: () => Promise<Queryable> | undefined
  /** Resolves once the tables are there (start() migrated or checked them). */
  ready: Promise<void>
  /** A refresh (the first of a run of failures) or a slot's release failed: the state stays as last read. */
  onError (error: unknown): void
  /** Runs put off may start: the pause state changed (here or on another receiver). */
  onWake (): void
}

/** A CTE that makes every paused wait due, `now` (ms) the parameter that holds the time. */
function wakePaused (s: string, now: string): string {
  return `woken AS (UPDATE ${s}.events SET next_attempt_at = ${now}::bigint WHERE state = 'pending' AND wait_reason = 'paused' AND next_attempt_at > ${now}::bigint)`
}

/** The SQL of the store, for one schema. */
function statements (schema: string): { takeToken: string, takeSlot: string, freeSlot: string, readPaused: string, pause: string, resume: string, resumeAll: string, channel: string } {
  const s = quoted(schema)
  // statement_timestamp(): one reading for the whole statement, on the server,
  // so receivers whose clocks disagree share one rate. A statement that waited
  // for another's row lock reads a time before that one's: `at` never goes back.
  const elapsedMs = 'greatest(0, extract(epoch FROM statement_timestamp() - b.at)::float8 * 1000)'
  const refilled = `least($3::float8, b.tokens + ${elapsedMs} * $2::float8 / 1000)`
  const channel = `${schema}_flow`
  return {
    channel,
    // Takes a token if there is one; else `wait_ms` until there will be, and with
    // $4 (reserve) takes that one now: a debt, so the next caller waits one more
    // interval and an event put back comes back to its own token.
    takeToken: `
      INSERT INTO ${s}.flow_buckets AS b (handler, tokens, at, wait_ms)
      VALUES ($1, $3::float8 - 1, statement_timestamp(), 0)
      ON CONFLICT (handler) DO UPDATE SET
        tokens = CASE WHEN ${refilled} >= 1 OR $4::boolean THEN ${refilled} - 1 ELSE ${refilled} END,
        wait_ms = CASE WHEN ${refilled} >= 1 THEN 0 ELSE ceil((1 - ${refilled}) * 1000 / $2::float8)::integer END,
        at = greatest(b.at, statement_timestamp())
      RETURNING wait_ms`,
    // The first of the handler's slots that no session holds, locked for this
    // session. The slots this process holds are left out before any lock is
    // tried (the subquery is a fence): a session's advisory locks stack, so
    // trying one of its own would succeed and never be fully released.
    takeSlot: `
      SELECT slot FROM (
        SELECT slot FROM generate_series(0, $2::integer - 1) AS slot WHERE NOT (slot = ANY ($3::integer[])) OFFSET 0
      ) AS free
      WHERE pg_try_advisory_lock(hashtext($1), slot)
      LIMIT 1`,
    // The slot, and the run that waited longest for one of this handler: due now,
    // and every receiver on the schema told so ($5, an empty payload: "look now"),
    // this one too, so that the slot goes to whichever claims first rather than
    // always to the receiver that freed it. SKIP LOCKED: a run some worker holds
    // is being decided; its wait ends by itself.
    freeSlot: `
      WITH woken AS (
        UPDATE ${s}.events SET next_attempt_at = $3 WHERE id IN (
          SELECT id FROM ${s}.events
          WHERE state = 'pending' AND wait_reason = 'concurrency' AND wait_handler = $4 AND next_attempt_at > $3
          ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED)
        RETURNING 1)
      SELECT pg_advisory_unlock(hashtext($1), $2::integer), (SELECT pg_notify($5, '') FROM woken LIMIT 1)`,
    readPaused: `SELECT handler FROM ${s}.flow_paused`,
    pause: `WITH paused AS (INSERT INTO ${s}.flow_paused (handler) VALUES ($1) ON CONFLICT (handler) DO NOTHING) SELECT pg_notify('${channel}', '')`,
    // A resume makes every paused wait due (now, in ms on this clock), in the pause row's
    // transaction: every one, whichever handler resumed, as a row records only
    // its first paused handler; one still paused is put back by its next claim.
    // A wait a worker is writing now is waited for (no SKIP LOCKED): written
    // before this resume, it is woken here; after, it saw no pause (run-event.ts).
    resume: `WITH resumed AS (DELETE FROM ${s}.flow_paused WHERE handler = $1), ${wakePaused(s, '$2')} SELECT pg_notify('${channel}', '')`,
    // resume() without a name resumes everything, the handlers paused by name too.
    resumeAll: `WITH resumed AS (DELETE FROM ${s}.flow_paused), ${wakePaused(s, '$1')} SELECT pg_notify('${channel}', '')`
  }
}

export class PostgresFlowStore implements FlowStore {
  readonly scope: string
  readonly #env: FlowStoreEnvironment
  readonly #sql: ReturnType<typeof statements>
  /** Slots held by this process, per handler. */
  readonly #held = new Map<string, Set<number>>()
  #state: PauseState = { all: false, handlers: new Set() }
  #timer: ReturnType<typeof setInterval> | undefined
  #refreshing: Promise<void> | undefined
  /** A refresh failed and none has succeeded since: said once, not every 500 ms. */
  #failing = false

  constructor (env: FlowStoreEnvironment) {
    this.#env = env
    this.scope = `Postgres schema ${env.schema}`
    this.#sql = statements(env.schema)
  }

  /** The channel on which a pause or resume is announced: the control connection LISTENs on it. */
  get channel (): string {
    return this.#sql.channel
  }

  /** Starts reading the shared pause state every PAUSE_REFRESH_MS, and now. */
  start (): void {
    if (this.#timer !== undefined) return
    this.heard()
    this.#timer = setInterval(() => { this.heard() }, PAUSE_REFRESH_MS)
    this.#timer.unref()
  }

  /** A pause or resume was announced (or may have been missed): read the state again. */
  heard (): void {
    this.refresh().then(() => { this.#failing = false }, (error: unknown) => {
      if (!this.#failing) this.#env.onError(error)
      this.#failing = true
    })
  }

  async takeToken (handler: string, rate: Required<RateLimit>, reserve: boolean): Promise<number> {
    const { rows } = await this.#control().query<{ wait_ms: number }>(this.#sql.takeToken, [handler, rate.perSecond, rate.burst, reserve])
    return rows[0]?.wait_ms ?? 0
  }

  /**
   * A slot held through the control connection's session: released by the
   * lease, or by the server when the connection (or the process) dies.
   */
  async takeSlot (handler: string, limit: number): Promise<SlotLease | undefined> {
    const held = this.#held.get(handler) ?? new Set()
    if (held.size >= limit) return undefined
    const { rows } = await this.#control().query<{ slot: number }>(this.#sql.takeSlot, [this.#slotKey(handler), limit, [...held]])
    const slot = rows[0]?.slot
    if (slot === undefined) return undefined
    held.add(slot)
    this.#held.set(handler, held)
    return leaseOnce(() => { this.#freeSlot(handler, slot) })
  }

  #freeSlot (handler: string, slot: number): void {
    const held = this.#held.get(handler)
    held?.delete(slot)
    if (held?.size === 0) this.#held.delete(handler)
    // Sent on the same connection before any later takeSlot: it is free by then.
    // Lost with the connection, the lock is gone with its session anyway.
    const control = this.#env.control()
    control?.query(this.#sql.freeSlot, [this.#slotKey(handler), slot, Date.now(), handler, this.#env.wakeChannel]).catch((error: unknown) => { this.#env.onError(error) })
  }

  async setPaused (handler: string | undefined, paused: boolean): Promise<void> {
    const unstarted = this.#env.unstarted?.()
    const control = unstarted === undefined ? await this.#started() : await unstarted
    if (paused) await control.query(this.#sql.pause, [handler ?? ALL])
    else if (handler === undefined) await control.query(this.#sql.resumeAll, [Date.now()])
    else await control.query(this.#sql.resume, [handler, Date.now()])
    // A read begun before the write may answer the old state: this one starts after it.
    await this.#refreshing?.catch(() => {})
    await this.refresh()
  }

  pauseState (): PauseState {
    return this.#state
  }

  /** Reads what is paused, as any receiver on this schema left it. One read at a time. */
  async refresh (): Promise<void> {
    this.#refreshing ??= this.#read().finally(() => { this.#refreshing = undefined })
    await this.#refreshing
  }

  close (): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
  }

  /** The control connection, once start() has reached the tables (waited for up to 10 s). */
  async #started (): Promise<ControlConnection> {
    const ready = await withDeadline(this.#env.ready.then(() => true), PAUSE_WAITS_FOR_START_MS, () => false)
    if (!ready) throw new Error('sir-webhooks: the Postgres inbox has not reached its database yet, so the pause could not be recorded; try again')
    return this.#control()
  }

  async #read (): Promise<void> {
    const control: Queryable | undefined = this.#env.control() ?? await this.#env.unstarted?.()
    if (control === undefined) return
    const { rows } = await control.query<{ handler: string }>(this.#sql.readPaused)
    const names = rows.map((row) => row.handler)
    const all = names.includes(ALL)
    const handlers = new Set(names.filter((name) => name !== ALL))
    const before = this.#state
    if (before.all === all && before.handlers.size === handlers.size && [...handlers].every((name) => before.handlers.has(name))) return
    this.#state = { all, handlers }
    if (!this.#state.all) this.#env.onWake()
  }

  #control (): ControlConnection {
    const control = this.#env.control()
    if (control === undefined) throw new Error('the Postgres inbox has not reached its database yet; flow control cannot ask it')
    return control
  }

  #slotKey (handler: string): string {
    return `sir-webhooks:flow:${this.#env.schema}:${handler}`
  }
}
