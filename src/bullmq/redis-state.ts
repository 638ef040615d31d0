// What the BullMQ inbox knows and says about Redis: whether it reaches it now (health()),
// whether the database it was given exists, and its errors, worded for what they are and
// stripped of what could echo an event.
import type { ConnectionOptions, RedisClient } from 'bullmq'
import { WebhookOptionsError } from '../core/errors.js'
import type { InboxHealth } from '../core/inbox.js'
import type { WebhookLogger } from '../core/logger.js'
import { defineScripts } from './scripts.js'

/**
 * An error as it may be logged. ioredis puts a failed command's arguments on
 * the error (`command.args`: a job's data, so the event body), and pino logs
 * every field: keep the name, message, code and stack only.
 */
export function forLog (error: unknown): Error {
  if (!(error instanceof Error)) return new Error(String(error))
  const copy = new Error(error.message)
  copy.name = error.name
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string' || typeof code === 'number') Object.assign(copy, { code })
  if (error.stack !== undefined) copy.stack = error.stack
  return copy
}

/** BullMQ's words for a job whose lock this worker no longer holds. */
const LOCK_LOST = /could not renew lock|missing lock|lock mismatch/i

/** Errors that mean Redis could not be reached, rather than that it answered with an error. */
const CONNECTION_LOST = /ECONN|ETIMEDOUT|ENOTFOUND|EHOSTUNREACH|EPIPE|connection is closed|stream isn't writeable|connect/i

/** The Redis database a connection asks for: ioredis options' `db`, or an ioredis instance's. */
function databaseOf (connection: ConnectionOptions): number {
  const options = (connection as { options?: { db?: unknown } }).options ?? connection
  const db = (options as { db?: unknown }).db
  return typeof db === 'number' ? db : 0
}

const CHECK_DB = 'sirWebhooksCheckDatabase'
const SCRIPTS = { [CHECK_DB]: { numberOfKeys: 0, lua: "redis.call('SELECT', ARGV[1]) return 1", readOnly: true } }

/**
 * ioredis answers a SELECT the server refuses with an error event and then goes
 * on in database 0, so a mistyped database number would read and write another
 * database's events. A script's SELECT asks the server without moving the connection.
 */
export async function checkDatabase (client: RedisClient, connection: ConnectionOptions): Promise<void> {
  const db = databaseOf(connection)
  if (db === 0) return
  defineScripts(client, SCRIPTS)
  try {
    await client.runCommand(CHECK_DB, [String(db)])
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    if (!/DB index|out of range|invalid/i.test(message)) throw error
    const answer = (message.split('\n')[0] ?? '').replace(/\s+script:.*$/, '')
    throw new WebhookOptionsError(`Redis has no database ${db} (it answered "${answer}"): "connection.db", the number after the host in redis://host:port/DB, must be a database the server has; the inbox does not fall back to database 0`)
  }
}

/** How the inbox sees Redis, for health() and the log. */
export class RedisState {
  #client: { status: string } | undefined
  #refused: string | undefined
  #lastErrorAt = 0
  readonly #logger: () => WebhookLogger | undefined

  constructor (logger: () => WebhookLogger | undefined) {
    this.#logger = logger
  }

  /** The client the inbox sends its commands on, once it has connected. */
  watch (client: { status: string }): void {
    this.#client = client
  }

  /** Redis refused the database: accepts are refused and health says why. */
  refuse (reason: string): void {
    this.#refused = reason.replace(/^sir-webhooks: /, '')
  }

  health (): InboxHealth {
    if (this.#refused !== undefined) return { status: 'degraded', reasons: [`${this.#refused}: deliveries are answered 503`] }
    const status = this.#client?.status
    if (status === 'ready') return { status: 'ok', reasons: [] }
    if (status === undefined) return { status: 'degraded', reasons: ['the BullMQ inbox has not reached Redis yet: deliveries are answered 503 until it does'] }
    return { status: 'degraded', reasons: [`the BullMQ inbox cannot reach Redis (connection ${status}): deliveries are answered 503 until it is back`] }
  }

  /**
   * A worker or queue error, said as what it is. A lost lock is not a lost Redis:
   * Redis answered, but a handler ran (or blocked the event loop) past the lock.
   * Connection errors repeat on every reconnection attempt: one line every ten seconds.
   */
  error (error: Error): void {
    const logger = this.#logger()
    if (LOCK_LOST.test(error.message)) {
      logger?.warn({ err: forLog(error) }, 'a BullMQ job\'s lock was lost: its handler ran, or blocked the event loop, past lockDurationMs; the job may run again in another receiver')
      return
    }
    // ioredis's own failed SELECT: the database check reports it, naming the option.
    if (/DB index/i.test(error.message)) return
    const now = Date.now()
    if (now - this.#lastErrorAt < 10_000) return
    this.#lastErrorAt = now
    const code = String((error as { code?: unknown }).code ?? '')
    const connection = CONNECTION_LOST.test(`${code} ${error.message}`) || this.#client === undefined || this.#client.status !== 'ready'
    logger?.error({ err: forLog(error) }, connection
      ? 'the BullMQ inbox lost Redis; deliveries get 503 until it is back'
      : 'the BullMQ inbox got an error from Redis')
  }
}
