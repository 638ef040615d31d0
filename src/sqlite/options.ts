import { WebhookOptionsError } from '../core/errors.js'
import { assertKnownOptions } from '../core/known-options.js'
import { integer } from '../core/options.js'
import { resolveMaxBacklog } from '../core/backlog-bound.js'

export interface SqliteInboxOptions {
  /** The database file, created if missing. One file per receiver group; processes may share it. */
  path: string
  /** How long a process owns an event it started; renewed while handlers run. A crashed process's events are taken over once it expires. Default 30 000. */
  leaseMs?: number
  /** How often the inbox looks for due retries and expired leases. Default 1 000. */
  pollIntervalMs?: number
  /**
   * How long a delivery waits for the store before it gets a 503: the bound on its
   * answer while another process holds the file's write lock. Default 2 000.
   */
  acceptTimeoutMs?: number
  /** How long a done event is kept, and so how long its id is remembered against duplicates. Default: the receiver's `dedupe.ttlSeconds` (7 days). */
  retentionSeconds?: number
  /** How long a dead event is kept. Default: until re-driven or purged by hand. */
  deadLetterRetentionSeconds?: number
  /** How often old events are purged. Default 3 600 000 (an hour). */
  purgeIntervalMs?: number
  /**
   * How the file is checked when the inbox opens it: `quick` (`PRAGMA quick_check`,
   * every page read once), `full` (`integrity_check`, indexes too) or `none`.
   * A damaged file fails the start. Default `quick`.
   */
  startupCheck?: StartupCheck
  /**
   * Pending events in the file (across every process sharing it) before new
   * deliveries get 503. Default 1 000 000. The receiver's `maxQueueSize`, when
   * set, bounds them too.
   */
  maxBacklog?: number
  /**
   * Free bytes the file's filesystem keeps: below it, deliveries get 503 while
   * the handlers drain, checked every `pollIntervalMs`. 0 turns the check off.
   * Default 268 435 456 (256 MiB).
   */
  minFreeDiskBytes?: number
}

export type StartupCheck = 'quick' | 'full' | 'none'

export interface ResolvedSqliteOptions {
  path: string
  leaseMs: number
  pollIntervalMs: number
  acceptTimeoutMs: number
  retentionSeconds: number | undefined
  deadLetterRetentionSeconds: number | undefined
  purgeIntervalMs: number
  startupCheck: StartupCheck
  maxBacklog: number
  minFreeDiskBytes: number
}

/**
 * Room for the work already taken: the done marks and purges of a full backlog,
 * a checkpoint of a write-ahead log grown while readers held it, and the rest
 * of the machine, which shares the disk.
 */
export const DEFAULT_MIN_FREE_DISK_BYTES = 256 * 1024 * 1024

/** Every option name, as a record so that an option added to the interface must be listed here. */
const OPTION_NAMES: Record<keyof SqliteInboxOptions, true> = {
  path: true,
  leaseMs: true,
  pollIntervalMs: true,
  acceptTimeoutMs: true,
  retentionSeconds: true,
  deadLetterRetentionSeconds: true,
  purgeIntervalMs: true,
  startupCheck: true,
  maxBacklog: true,
  minFreeDiskBytes: true
}

export function resolveSqliteOptions (options: SqliteInboxOptions): ResolvedSqliteOptions {
  if (options === null || typeof options !== 'object') {
    throw new WebhookOptionsError('sqliteInbox(options): options must be an object with at least "path"')
  }
  assertKnownOptions(options, Object.keys(OPTION_NAMES), 'sqliteInbox(options)')
  if (typeof options.path !== 'string' || options.path.length === 0) {
    throw new WebhookOptionsError('"path" must be the path of the inbox database file, such as "./sir-inbox.db"')
  }
  return {
    path: options.path,
    leaseMs: integer('leaseMs', options.leaseMs, 30_000, 100),
    pollIntervalMs: integer('pollIntervalMs', options.pollIntervalMs, 1_000, 10),
    acceptTimeoutMs: integer('acceptTimeoutMs', options.acceptTimeoutMs, 2_000, 0),
    retentionSeconds: options.retentionSeconds === undefined ? undefined : integer('retentionSeconds', options.retentionSeconds, 0, 1),
    deadLetterRetentionSeconds: options.deadLetterRetentionSeconds === undefined ? undefined : integer('deadLetterRetentionSeconds', options.deadLetterRetentionSeconds, 0, 1),
    purgeIntervalMs: integer('purgeIntervalMs', options.purgeIntervalMs, 3_600_000, 1_000),
    startupCheck: startupCheck(options.startupCheck),
    maxBacklog: resolveMaxBacklog(options.maxBacklog),
    minFreeDiskBytes: integer('minFreeDiskBytes', options.minFreeDiskBytes, DEFAULT_MIN_FREE_DISK_BYTES, 0)
  }
}

function startupCheck (value: unknown): StartupCheck {
  if (value === undefined) return 'quick'
  if (value === 'quick' || value === 'full' || value === 'none') return value
  throw new WebhookOptionsError(`"startupCheck" must be 'quick', 'full' or 'none', got ${JSON.stringify(value)}`)
}
