import type { ConnectionOptions } from 'bullmq'
import { WebhookOptionsError } from '../core/errors.js'
import { assertKnownOptions } from '../core/known-options.js'
import { integer } from '../core/options.js'
import { resolveMaxBacklog } from '../core/backlog-bound.js'

export interface BullmqInboxOptions {
  /** Where Redis is: ioredis options (`{ host, port }`) or an ioredis instance. */
  connection: ConnectionOptions
  /** The BullMQ queue. Receivers that share it share dedupe and work. Default `sir-webhooks`. */
  queueName?: string
  /** BullMQ's key prefix. Default `bull`. */
  prefix?: string
  /** How long an accept waits for Redis before the delivery gets a 503. Default 2 000. */
  acceptTimeoutMs?: number
  /** How long a worker's hold on a running job lasts without renewal; a crashed worker's jobs are recovered after it. Default 30 000. */
  lockDurationMs?: number
  /** How often workers look for jobs whose holder stopped renewing. Default 30 000. */
  stalledIntervalMs?: number
  /** Times a job may be recovered from a crashed worker before it is dead-lettered. Default 3. */
  maxStalledCount?: number
  /** How long a done event is kept as its outcome record. Default: the receiver's `dedupe.ttlSeconds` (7 days). */
  retentionSeconds?: number
  /** How long an event id is remembered against duplicates, at least 7 days. Default: the longer of 7 days and the receiver's `dedupe.ttlSeconds`. */
  dedupeSeconds?: number
  /** How long a dead event is kept. Default: until re-driven or removed by hand. */
  deadLetterRetentionSeconds?: number
  /**
   * Unfinished jobs in the queue (across every receiver on it) before new
   * deliveries get 503. Default 1 000 000. The receiver's `maxQueueSize`, when
   * set, bounds them too; and past 90% of Redis's `maxmemory`, when it has one,
   * deliveries get 503 whatever the count.
   */
  maxBacklog?: number
}

export interface ResolvedBullmqOptions {
  connection: ConnectionOptions
  queueName: string
  prefix: string
  acceptTimeoutMs: number
  lockDurationMs: number
  stalledIntervalMs: number
  maxStalledCount: number
  retentionSeconds: number | undefined
  dedupeSeconds: number | undefined
  deadLetterRetentionSeconds: number | undefined
  maxBacklog: number
}

export const MIN_DEDUPE_SECONDS = 7 * 24 * 60 * 60

/** Every option name, as a record so that an option added to the interface must be listed here. */
const OPTION_NAMES: Record<keyof BullmqInboxOptions, true> = {
  connection: true,
  queueName: true,
  prefix: true,
  acceptTimeoutMs: true,
  lockDurationMs: true,
  stalledIntervalMs: true,
  maxStalledCount: true,
  retentionSeconds: true,
  dedupeSeconds: true,
  deadLetterRetentionSeconds: true,
  maxBacklog: true
}

export function resolveBullmqOptions (options: BullmqInboxOptions): ResolvedBullmqOptions {
  if (options === null || typeof options !== 'object') {
    throw new WebhookOptionsError('bullmqInbox(options): options must be an object with at least "connection"')
  }
  assertKnownOptions(options, Object.keys(OPTION_NAMES), 'bullmqInbox(options)')
  if (options.connection === null || typeof options.connection !== 'object') {
    throw new WebhookOptionsError('"connection" must be ioredis options such as { host, port } or an ioredis instance')
  }
  const queueName = options.queueName ?? 'sir-webhooks'
  if (typeof queueName !== 'string' || queueName.length === 0 || queueName.includes(':')) {
    throw new WebhookOptionsError('"queueName" must be a non-empty string without ":"')
  }
  const prefix = options.prefix ?? 'bull'
  if (typeof prefix !== 'string' || prefix.length === 0) throw new WebhookOptionsError('"prefix" must be a non-empty string')
  const optional = (name: string, value: unknown, minimum: number): number | undefined => value === undefined ? undefined : integer(name, value, 0, minimum)
  return {
    connection: options.connection,
    queueName,
    prefix,
    acceptTimeoutMs: integer('acceptTimeoutMs', options.acceptTimeoutMs, 2_000, 1),
    lockDurationMs: integer('lockDurationMs', options.lockDurationMs, 30_000, 100),
    stalledIntervalMs: integer('stalledIntervalMs', options.stalledIntervalMs, 30_000, 100),
    maxStalledCount: integer('maxStalledCount', options.maxStalledCount, 3, 0),
    retentionSeconds: optional('retentionSeconds', options.retentionSeconds, 1),
    // The sender may redeliver for days; an id forgotten sooner would be handled twice.
    dedupeSeconds: optional('dedupeSeconds', options.dedupeSeconds, MIN_DEDUPE_SECONDS),
    deadLetterRetentionSeconds: optional('deadLetterRetentionSeconds', options.deadLetterRetentionSeconds, 1),
    maxBacklog: resolveMaxBacklog(options.maxBacklog)
  }
}
