import { statSync } from 'node:fs'
import { resolve } from 'node:path'

/** The inbox's database or `-wal` file is no longer the one it has open. */
export class InboxFileGoneError extends Error {
  readonly code = 'SQLITE_INBOX_FILE_GONE'
  constructor (detail: string) {
    super(detail)
    this.name = 'InboxFileGoneError'
  }
}

type Identity = { dev: number, ino: number } | undefined

function identity (path: string): Identity {
  try {
    const { dev, ino } = statSync(path)
    return { dev, ino }
  } catch {
    return undefined
  }
}

/**
 * Whether the paths still name the files SQLite has open. A database or `-wal`
 * file deleted (or replaced) under a running inbox is not noticed by SQLite: it
 * keeps writing to the unlinked file, every commit "succeeds", and what it
 * acknowledged is gone when the process ends (an audit lost 4 377 of 6 000
 * acknowledged events that way). Compared by device and inode, which a
 * replacement file does not share.
 */
export class InboxFiles {
  readonly #database: string
  readonly #wal: string
  readonly #databaseIdentity: Identity
  #walIdentity: Identity
  #gone: string | undefined

  constructor (path: string) {
    this.#database = resolve(path)
    this.#wal = `${this.#database}-wal`
    this.#databaseIdentity = identity(this.#database)
    this.#walIdentity = identity(this.#wal)
  }

  /** Why the files are not the ones opened, or undefined while they are. Once gone, always gone. */
  check (): string | undefined {
    if (this.#gone !== undefined) return this.#gone
    this.#gone = this.#changed(this.#database, this.#databaseIdentity, 'database file')
    if (this.#gone !== undefined) return this.#gone
    // A -wal that did not exist at open is taken as it first appears.
    if (this.#walIdentity === undefined) this.#walIdentity = identity(this.#wal)
    else this.#gone = this.#changed(this.#wal, this.#walIdentity, '-wal file')
    return this.#gone
  }

  /** Throws `InboxFileGoneError` when the files are gone: called before each accept's commit. */
  assertPresent (): void {
    const gone = this.check()
    if (gone !== undefined) throw new InboxFileGoneError(gone)
  }

  #changed (path: string, opened: Identity, what: string): string | undefined {
    if (opened === undefined) return undefined
    const now = identity(path)
    if (now === undefined) return `the inbox's ${what} "${path}" was deleted while in use`
    if (now.dev !== opened.dev || now.ino !== opened.ino) return `the inbox's ${what} "${path}" was replaced by another file while in use`
    return undefined
  }
}
