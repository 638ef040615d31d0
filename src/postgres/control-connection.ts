import type { Client, QueryResult, QueryResultRow } from 'pg'
import type { WebhookLogger } from '../core/logger.js'
import { redactedStoreError } from './store-errors.js'

const RECONNECT_MS = 1_000
const COUNT_LOCK_TIMEOUT_MS = 1_000

/**
 * The inbox's one connection outside the pool. It LISTENs for the wake-ups that
 * accepts (in any instance) send on commit, and it counts attempts: that count
 * must commit while the claiming transaction is still open, and taking a second
 * pool client for it could wait forever on a pool whose every client is running
 * a handler. Lost, it reconnects every second; meanwhile polling finds the work,
 * and claims wait, since an attempt that cannot be counted is not started.
 */
export class ControlConnection {
  readonly #makeClient: () => Client
  readonly #channel: string
  readonly #onWake: (sender: string | undefined) => void
  readonly #logger: WebhookLogger
  readonly #countStatement: (idLiterals: string[]) => string
  readonly #counts: Array<{ id: string, resolve: () => void, reject: (error: unknown) => void }> = []
  #counting = false
  #client: Client | undefined
  #connecting: Promise<void> | undefined
  #reconnectTimer: NodeJS.Timeout | undefined
  #closed = false
  #lastError: unknown
  /** Other channels listened to, with who hears them (flow control's pause changes). */
  readonly #alsoHeard = new Map<string, () => void>()
  /** One query at a time on the client, in the order asked (pg 9 no longer queues them itself). */
  #turn: Promise<unknown> = Promise.resolve()

  constructor (makeClient: () => Client, channel: string, countStatement: (idLiterals: string[]) => string, onWake: (sender: string | undefined) => void, logger: WebhookLogger) {
    this.#makeClient = makeClient
    this.#countStatement = countStatement
    this.#channel = channel
    this.#onWake = onWake
    this.#logger = logger
  }

  get connected (): boolean {
    return this.#client !== undefined
  }

  /** The last reason the connection failed, while it is down. */
  get lastError (): unknown {
    return this.#client === undefined ? this.#lastError : undefined
  }

  /** Connects and listens; on failure, keeps trying in the background and resolves anyway. */
  async open (): Promise<void> {
    this.#connecting ??= this.#connect().finally(() => { this.#connecting = undefined })
    await this.#connecting
  }

  /**
   * Adds one to the event's attempts. Counts asked for while one is being written
   * go together in the next statement: one client runs one query at a time.
   * Committed without waiting for the WAL flush: a server crash may forget an
   * attempt, which costs one more try; a process crash loses nothing, and the
   * fsync would cost every event.
   */
  async countAttempt (id: string): Promise<void> {
    return await new Promise((resolve, reject) => {
      this.#counts.push({ id, resolve, reject })
      if (!this.#counting) void this.#writeCounts()
    })
  }

  async #writeCounts (): Promise<void> {
    this.#counting = true
    while (this.#counts.length > 0) {
      const batch = this.#counts.splice(0)
      const client = this.#client
      try {
        if (client === undefined) throw new Error('the inbox lost its control connection; the attempt cannot be counted yet')
        const ids = batch.map(({ id }) => client.escapeLiteral(id))
        // The session's settings (set on connect) apply: no WAL flush, and a lock timeout.
        await this.#inTurn(async () => await client.query(this.#countStatement(ids)))
        for (const waiting of batch) waiting.resolve()
      } catch (error) {
        for (const waiting of batch) waiting.reject(error)
      }
    }
    this.#counting = false
  }

  /**
   * Also LISTENs on `channel` (call before `open()`): `heard` runs on each of its
   * notifications, and after a reconnection, since those sent meanwhile are lost.
   */
  listenAlso (channel: string, heard: () => void): void {
    this.#alsoHeard.set(channel, heard)
  }

  /**
   * One statement on this connection, outside any transaction: flow control's
   * tokens, slots and pause state. Here rather than on a pool client for the
   * reason attempts are counted here: every pool client may be running a handler
   * that waits for this answer. Throws while the connection is down.
   */
  async query<Row extends QueryResultRow> (text: string, values?: unknown[]): Promise<QueryResult<Row>> {
    const client = this.#client
    if (client === undefined) throw new Error('the inbox lost its control connection; flow control cannot ask the database yet')
    return await this.#inTurn(async () => await client.query<Row>(text, values))
  }

  async #inTurn<T> (work: () => Promise<T>): Promise<T> {
    const turn = this.#turn.then(work)
    this.#turn = turn.catch(() => {})
    return await turn
  }

  async close (): Promise<void> {
    this.#closed = true
    clearTimeout(this.#reconnectTimer)
    await this.#connecting?.catch(() => {})
    const client = this.#client
    this.#client = undefined
    await client?.end().catch(() => {})
  }

  async #connect (): Promise<void> {
    const client = this.#makeClient()
    client.on('error', (error) => { this.#lost(client, error) })
    client.on('end', () => { this.#lost(client, new Error('the control connection ended')) })
    client.on('notification', (message) => {
      const heard = this.#alsoHeard.get(message.channel)
      if (heard !== undefined) heard()
      else this.#onWake(message.payload)
    })
    try {
      await client.connect()
      // This connection only counts attempts and listens, so the settings the counts
      // need hold for the whole session, not repeated with every count. The lock
      // timeout breaks a wait the server cannot see as a deadlock: the workers wait
      // for a count while holding their claims, and a LOCK TABLE queued behind those
      // claims (a migration, VACUUM FULL) would block the count forever.
      const listens = [this.#channel, ...this.#alsoHeard.keys()].map((channel) => `; LISTEN "${channel}"`).join('')
      await client.query(`SET synchronous_commit TO off; SET lock_timeout TO ${COUNT_LOCK_TIMEOUT_MS}${listens}`)
    } catch (error) {
      this.#lost(client, error)
      return
    }
    if (this.#closed) {
      await client.end().catch(() => {})
      return
    }
    this.#client = client
    this.#lastError = undefined
    // Notifications sent while it was down are lost: look for work now.
    this.#onWake(undefined)
    for (const heard of this.#alsoHeard.values()) heard()
  }

  #lost (client: Client, error: unknown): void {
    if (this.#client === client) this.#client = undefined
    client.end().catch(() => {})
    if (this.#closed || this.#reconnectTimer !== undefined) return
    this.#lastError = redactedStoreError(error)
    this.#logger.error({ err: this.#lastError }, 'the Postgres inbox lost its control connection (LISTEN, attempt counts); reconnecting')
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined
      void this.open()
    }, RECONNECT_MS)
    this.#reconnectTimer.unref()
  }
}
