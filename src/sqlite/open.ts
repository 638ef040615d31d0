import { createRequire } from 'node:module'
import { resolve } from 'node:path'
import type BetterSqlite3 from 'better-sqlite3'
import { WebhookError } from '../core/errors.js'
import { BUSY_WAIT_MS } from './group-commit.js'
import type { StartupCheck } from './options.js'
import { openSchema, type Statements } from './schema.js'

/**
 * better-sqlite3 is an optional peer dependency, loaded only when a SQLite inbox
 * is made, so that users of the other inboxes never need it installed.
 */
function loadDriver (): typeof BetterSqlite3 {
  try {
    return createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3
  } catch (error) {
    throw new Error('sir-webhooks: sqliteInbox() needs better-sqlite3 12.x; install it with `npm install better-sqlite3@12`', { cause: error })
  }
}

/** An SQLite error as "CODE: message", for messages and health reasons. */
export function describe (error: unknown): string {
  const { code, message } = error as { code?: unknown, message?: unknown }
  return `${typeof code === 'string' ? `${code}: ` : ''}${String(message)}`
}

/** Open, permission and schema failures, with the file they are about and what to check. */
function unusable (path: string, error: unknown): WebhookError {
  return new WebhookError('SQLITE_INBOX_UNUSABLE', `sir-webhooks: the SQLite inbox cannot use "${resolve(path)}" (${describe(error)}). ` +
    'The process needs to read and write the file and to create files beside it (WAL mode keeps "-wal" and "-shm" files in the same directory).', 500, { cause: error })
}

/**
 * A database that opens read-only (a file or a directory this process may read
 * but not write) fails only at its first write: every accept would then be a 503.
 * A write that is rolled back finds it at start instead.
 */
function probeWrite (db: BetterSqlite3.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number
  db.exec('BEGIN IMMEDIATE')
  try {
    db.pragma(`user_version = ${version}`)
  } finally {
    if (db.inTransaction) db.exec('ROLLBACK')
  }
}

/**
 * `quick_check` reads every page (about 2 ms per MB on the machine of
 * docs/deployment.md), so a damaged file fails the start instead of answering
 * 2xx to events it cannot run.
 */
function checkPages (db: BetterSqlite3.Database, path: string, check: StartupCheck): void {
  if (check === 'none') return
  const pragma = check === 'full' ? 'integrity_check(20)' : 'quick_check(20)'
  let problems: string[]
  try {
    problems = (db.pragma(pragma) as Array<Record<string, string>>).map((row) => Object.values(row)[0] ?? '')
  } catch (error) {
    problems = [describe(error)]
  }
  if (problems.length === 1 && problems[0] === 'ok') return
  throw damaged(path, `${pragma}: ${problems.slice(0, 3).join('; ')}`)
}

function isDamage (error: unknown): boolean {
  const code = (error as { code?: unknown }).code
  return typeof code === 'string' && (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB')
}

function damaged (path: string, detail: string): WebhookError {
  return new WebhookError('SQLITE_INBOX_DAMAGED', `sir-webhooks: the SQLite inbox file "${resolve(path)}" is damaged (${detail}). ` +
    'Move it aside and restore the last backup; `sqlite3 <file> ".recover"` may save the events it still holds.', 500)
}

/**
 * Opens the inbox file, or throws an error that names it and says what is wrong.
 * `acceptTimeoutMs` caps the synchronous part of a lock wait too, when it is below `BUSY_WAIT_MS`.
 */
export function openInboxFile (path: string, check: StartupCheck, acceptTimeoutMs: number): { db: BetterSqlite3.Database, sql: Statements } {
  const Database = loadDriver()
  let db: BetterSqlite3.Database
  try {
    db = new Database(path)
  } catch (error) {
    throw unusable(path, error)
  }
  try {
    const sql = openSchema(db)
    probeWrite(db)
    checkPages(db, path, check)
    // How long one attempt at the write lock may block the event loop; the rest of
    // the wait, up to acceptTimeoutMs, is spent in asynchronous retries (group-commit.ts).
    db.pragma(`busy_timeout = ${Math.min(BUSY_WAIT_MS, acceptTimeoutMs)}`)
    return { db, sql }
  } catch (error) {
    db.close()
    if (error instanceof WebhookError) throw error
    throw isDamage(error) ? damaged(path, describe(error)) : unusable(path, error)
  }
}

export interface Durability {
  journalMode: string
  synchronous: 'OFF' | 'NORMAL' | 'FULL' | 'EXTRA'
}

/** How a connection commits, by SQLite's pragma names. */
export function durabilityOf (db: BetterSqlite3.Database | undefined): Durability {
  if (db === undefined) throw new Error('sir-webhooks: this SQLite inbox is closed; open a new one on the same path to query it')
  const levels = ['OFF', 'NORMAL', 'FULL', 'EXTRA'] as const
  return {
    journalMode: db.pragma('journal_mode', { simple: true }) as string,
    synchronous: levels[db.pragma('synchronous', { simple: true }) as number] ?? 'OFF'
  }
}
