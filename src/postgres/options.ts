import type { Pool } from 'pg'
import { WebhookOptionsError } from '../core/errors.js'
import { assertKnownOptions } from '../core/known-options.js'
import { integer } from '../core/options.js'
import { resolveMaxBacklog } from '../core/backlog-bound.js'

export interface PostgresInboxOptions {
  /** The app's pg Pool. The inbox borrows clients from it and never ends it. Give this or `connectionString`. */
  pool?: Pool
  /** A connection string; the inbox makes its own pool and ends it on `close()`. Give this or `pool`. */
  connectionString?: string
  /** The schema that holds the inbox's tables, created if missing. Default `sir_webhooks`. */
  schema?: string
  /** Create or upgrade the tables at start, under an advisory lock. `false`: run the SQL of `sir-webhooks migrate --print` yourself. Default true. */
  migrate?: boolean
  /** How long an accept may take, a wait for a pool client included, before the delivery gets a 503 and nothing is recorded. Default 2 000. */
  acceptTimeoutMs?: number
  /** How long an accept waits for others to share its commit: one multi-row INSERT and one commit per batch. Default 1. */
  groupCommitMs?: number
  /** How often the inbox looks for due events when no notification came (retries, other instances). Default 1 000. */
  pollIntervalMs?: number
  /** How long a done event is kept, and so how long its id is remembered against duplicates. Default: the receiver's `dedupe.ttlSeconds` (7 days). */
  retentionSeconds?: number
  /** How long a dead event is kept. Default: until re-driven or purged by hand. */
  deadLetterRetentionSeconds?: number
  /** How often old events are purged. Default 3 600 000 (an hour). */
  purgeIntervalMs?: number
  /**
   * How long a transaction of the inbox may wait between two statements before
   * Postgres ends its session (`idle_in_transaction_session_timeout`, set on the
   * inbox's own transactions only). It bounds how long a stopped or hung
   * receiver holds the events it claimed; a handler that goes this long without
   * a query on `transaction` is cut off too, and its event runs again. 0: no limit.
   * Default 60 000.
   */
  idleInTransactionTimeoutMs?: number
  /**
   * Wait for the WAL flush when an event's transaction commits. Off by default: a
   * server crash right after such a commit loses the handlers' writes and the
   * event's "done" together, so the event runs again and its effects are still
   * there once. On: every event costs an fsync. Accepts always wait for it.
   */
  handlerSynchronousCommit?: boolean
  /**
   * Pending events in the table (across every instance) before new deliveries
   * get 503. Default 1 000 000. The receiver's `maxQueueSize`, when set, bounds
   * them too. No free-disk check: the database's disk is not visible from here
   * (docs/deployment.md, "The backlog bound").
   */
  maxBacklog?: number
}

export interface ResolvedPostgresOptions {
  pool: Pool | undefined
  connectionString: string | undefined
  schema: string
  migrate: boolean
  acceptTimeoutMs: number
  groupCommitMs: number
  pollIntervalMs: number
  retentionSeconds: number | undefined
  deadLetterRetentionSeconds: number | undefined
  purgeIntervalMs: number
  idleInTransactionTimeoutMs: number
  handlerSynchronousCommit: boolean
  maxBacklog: number
}

// Keyed by the options interface: a new option left out of this list does not compile.
const OPTION_NAMES: Record<keyof PostgresInboxOptions, true> = {
  pool: true,
  connectionString: true,
  schema: true,
  migrate: true,
  acceptTimeoutMs: true,
  groupCommitMs: true,
  pollIntervalMs: true,
  retentionSeconds: true,
  deadLetterRetentionSeconds: true,
  purgeIntervalMs: true,
  idleInTransactionTimeoutMs: true,
  handlerSynchronousCommit: true,
  maxBacklog: true
}

/**
 * Quoted wherever it is used, but kept to plain lower-case names so that the
 * `LISTEN` channel derived from it (63 bytes at most) and psql sessions need no quoting.
 */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,49}$/

const DEFAULT_SCHEMA = 'sir_webhooks'

/** The schema option checked, or the default. */
export function schemaName (value: unknown): string {
  const schema = value ?? DEFAULT_SCHEMA
  if (typeof schema !== 'string' || !SCHEMA_NAME.test(schema)) {
    throw new WebhookOptionsError(`"schema" must be a lower-case SQL name of at most 50 characters (letters, digits, _), such as "${DEFAULT_SCHEMA}"`)
  }
  return schema
}

function isPool (value: unknown): value is Pool {
  return value !== null && typeof value === 'object' && typeof (value as Pool).connect === 'function' && typeof (value as Pool).query === 'function'
}

/**
 * Whether the idle limit goes on the sessions of the inbox's own pool, at
 * connect, rather than in each transaction. Not for an app's pool, whose
 * sessions are the app's; nor when the connection string sets `options`
 * itself, which pg would let win over the inbox's.
 */
export function idleLimitInSession (options: ResolvedPostgresOptions): boolean {
  return options.pool === undefined && options.idleInTransactionTimeoutMs > 0 && !/(^|[?&\s])options=/i.test(options.connectionString ?? '')
}

/** The pg `options` of the inbox's own pool's sessions, PGOPTIONS kept. */
export function sessionOptions (options: ResolvedPostgresOptions): { options?: string } {
  if (!idleLimitInSession(options)) return {}
  const limit = `-c idle_in_transaction_session_timeout=${options.idleInTransactionTimeoutMs}`
  return { options: process.env.PGOPTIONS === undefined || process.env.PGOPTIONS === '' ? limit : `${process.env.PGOPTIONS} ${limit}` }
}

/**
 * 0 (no limit), or at least a second: under load the inbox's own statements can
 * be that far apart (a GC pause, a busy event loop), and a shorter limit would
 * end sessions doing nothing wrong.
 */
function idleLimit (value: unknown): number {
  const ms = integer('idleInTransactionTimeoutMs', value, 60_000, 0)
  if (ms !== 0 && ms < 1_000) throw new WebhookOptionsError(`"idleInTransactionTimeoutMs" must be 0 (no limit) or at least 1000, got ${ms}`)
  return ms
}

export function resolvePostgresOptions (options: PostgresInboxOptions): ResolvedPostgresOptions {
  if (options === null || typeof options !== 'object') {
    throw new WebhookOptionsError('postgresInbox(options): options must be an object with "pool" or "connectionString"')
  }
  assertKnownOptions(options, Object.keys(OPTION_NAMES), 'postgresInbox(options)')
  const { pool, connectionString } = options
  if ((pool === undefined) === (connectionString === undefined)) {
    throw new WebhookOptionsError('postgresInbox(options): give exactly one of "pool" (a pg Pool) and "connectionString"')
  }
  if (pool !== undefined && !isPool(pool)) throw new WebhookOptionsError('"pool" must be a pg Pool (new pg.Pool(...))')
  if (connectionString !== undefined && (typeof connectionString !== 'string' || connectionString.length === 0)) {
    throw new WebhookOptionsError('"connectionString" must be a non-empty string such as "postgres://user@host/db"')
  }
  const schema = schemaName(options.schema)
  for (const name of ['migrate', 'handlerSynchronousCommit'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'boolean') throw new WebhookOptionsError(`"${name}" must be true or false`)
  }
  const optional = (name: string, value: unknown): number | undefined => value === undefined ? undefined : integer(name, value, 0, 1)
  const groupCommitMs = integer('groupCommitMs', options.groupCommitMs, 1, 0)
  // A longer wait only adds latency: a batch also fills while the previous one commits.
  if (groupCommitMs > 50) throw new WebhookOptionsError(`"groupCommitMs" must be at most 50, got ${groupCommitMs}`)
  return {
    pool,
    connectionString,
    schema,
    migrate: options.migrate ?? true,
    acceptTimeoutMs: integer('acceptTimeoutMs', options.acceptTimeoutMs, 2_000, 1),
    groupCommitMs,
    pollIntervalMs: integer('pollIntervalMs', options.pollIntervalMs, 1_000, 10),
    retentionSeconds: optional('retentionSeconds', options.retentionSeconds),
    deadLetterRetentionSeconds: optional('deadLetterRetentionSeconds', options.deadLetterRetentionSeconds),
    purgeIntervalMs: integer('purgeIntervalMs', options.purgeIntervalMs, 3_600_000, 1_000),
    idleInTransactionTimeoutMs: idleLimit(options.idleInTransactionTimeoutMs),
    handlerSynchronousCommit: options.handlerSynchronousCommit ?? false,
    maxBacklog: resolveMaxBacklog(options.maxBacklog)
  }
}
