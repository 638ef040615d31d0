import { existsSync } from 'node:fs'
import type { Inbox } from '../core/inbox.js'
import { UsageError, stringFlag, type Flags, type Io } from './args.js'

/**
 * What the operator commands need of a durable inbox; every one of them
 * implements it. The optional part is what some stores add: a command that
 * needs it says so when the store lacks it.
 */
export type OperatorInbox = Required<Pick<Inbox, 'counts' | 'deadLetters' | 'outcome' | 'redrive' | 'purge' | 'close'>> &
  Pick<Inbox, 'countMatching' | 'requeue' | 'flowStore' | 'orderingStore' | 'events' | 'waiting'>

type Opener = (url: URL, flags: Flags) => Promise<OperatorInbox>

/**
 * One function per store, keyed by URL scheme. The inbox modules are imported
 * here, on use, so the CLI runs without better-sqlite3, bullmq or pg installed.
 */
const openers: Record<string, Opener> = {
  'sqlite:': openSqlite,
  'redis:': openRedis,
  'rediss:': openRedis,
  'postgres:': openPostgres,
  'postgresql:': openPostgres
}

export const STORE_FORMS = 'sqlite:PATH, redis://[user:password@]host[:port][/db] or postgres://[user:password@]host[:port]/database'

/** `--store` (or `SIR_WEBHOOKS_STORE`, which keeps a password out of shell history), opened. */
export async function openStore (flags: Flags, io: Io): Promise<OperatorInbox> {
  const spec = stringFlag(flags, 'store') ?? io.env.SIR_WEBHOOKS_STORE
  if (spec === undefined || spec.length === 0) throw new UsageError(`--store is required (or set SIR_WEBHOOKS_STORE): ${STORE_FORMS}`)
  const url = URL.canParse(spec) ? new URL(spec) : undefined
  const open = url === undefined ? undefined : openers[url.protocol]
  if (url === undefined || open === undefined) {
    // Not even its scheme is repeated: a password pasted in the wrong place reads as one.
    throw new UsageError(`--store must be ${STORE_FORMS}; the value given is none of these (it is not shown, since a store value may hold a password)`)
  }
  return await open(url, flags)
}

async function openSqlite (url: URL): Promise<OperatorInbox> {
  // sqlite:PATH: the path is everything after the scheme, relative or absolute.
  let path: string
  try {
    path = decodeURIComponent(url.href.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, ''))
  } catch {
    throw new UsageError('--store: the sqlite:PATH given has a % that does not start an escape such as %20; write a literal % as %25')
  }
  // The inbox would create an empty file at a mistyped path and report nothing.
  // The path is not repeated: a store value may hold a password, and the operator has it at hand.
  if (path.length === 0 || !existsSync(path)) throw new UsageError('--store: no SQLite file at the sqlite:PATH given (this command opens the file an inbox made, and never creates one): check the path, relative to this directory or absolute')
  const { sqliteInbox } = await import('../sqlite/inbox.js')
  return sqliteInbox({ path })
}

async function openPostgres (url: URL, flags: Flags): Promise<OperatorInbox> {
  const { postgresInbox } = await import('../postgres/inbox.js')
  const schema = stringFlag(flags, 'schema')
  // Never migrates: an operator's command reads and re-drives, it does not create tables.
  return postgresInbox({ connectionString: url.href, migrate: false, ...(schema === undefined ? {} : { schema }) })
}

async function openRedis (url: URL, flags: Flags): Promise<OperatorInbox> {
  const db = url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0
  if (!Number.isSafeInteger(db) || db < 0) throw new UsageError('--store: the Redis database after the host must be a number, as in redis://host:6379/0')
  const connection = {
    host: url.hostname === '' ? '127.0.0.1' : url.hostname,
    port: url.port === '' ? 6379 : Number(url.port),
    db,
    // A one-shot command: a Redis that is down is an answer, not something to wait out.
    maxRetriesPerRequest: 1,
    connectTimeout: 5_000,
    retryStrategy: () => null,
    ...(url.username === '' ? {} : { username: decodeURIComponent(url.username) }),
    ...(url.password === '' ? {} : { password: decodeURIComponent(url.password) }),
    ...(url.protocol === 'rediss:' ? { tls: {} } : {})
  }
  const { bullmqInbox } = await import('../bullmq/inbox.js')
  return bullmqInbox({
    connection,
    ...(stringFlag(flags, 'queue') === undefined ? {} : { queueName: stringFlag(flags, 'queue') }),
    ...(stringFlag(flags, 'prefix') === undefined ? {} : { prefix: stringFlag(flags, 'prefix') })
  })
}
