import { close, fsync, open } from 'node:fs'
import { dirname, resolve } from 'node:path'

/** Makes every commit made so far durable; resolves once it is on disk. */
export type LogSync = () => Promise<void>

/** `directory`: opened read-only (a directory cannot be opened for writing); a file read-write, which Windows needs to flush it. */
const fsyncPath = async (path: string, directory: boolean): Promise<void> => await new Promise((done, fail) => {
  open(path, directory ? 'r' : 'r+', (error, fd) => {
    if (error !== null) return fail(error)
    fsync(fd, (syncError) => { close(fd, () => { if (syncError === null) done(); else fail(syncError) }) })
  })
})

/**
 * The fsync that `synchronous=FULL` makes at every COMMIT in WAL mode, taken off
 * the event loop: the accepts' transactions commit with `synchronous=NORMAL` (the
 * frames are written to the `-wal` file, not synced), and their answers wait for
 * an fsync of that file run on libuv's thread pool, which began after their
 * COMMIT. better-sqlite3 fsyncs on the calling thread, so with FULL the event
 * loop stopped for every accept batch's fsync (2.8 ms median, 185 ms under disk
 * contention, measured while a backlog drained: docs/design.md); now sockets are
 * read and handlers run meanwhile. Syncs coalesce: commits made while one runs
 * share the next. The first sync also syncs the directory, as SQLite does for a
 * WAL file it created, so the file itself survives a power cut. The WAL file is
 * never replaced while this connection is open (SQLite deletes it only when the
 * last connection closes), and a checkpoint syncs it before copying it into the
 * database, so a synced frame stays durable once the WAL restarts.
 */
export class WalSync {
  readonly #wal: string
  readonly #directory: string
  readonly #syncPath: (path: string, directory: boolean) => Promise<void>
  #directorySynced = false
  /** The sync running, and whether commits were made since it began (they need the next one). */
  #running: Promise<void> | undefined
  #next: Promise<void> | undefined

  constructor (databasePath: string, syncPath: (path: string, directory: boolean) => Promise<void> = fsyncPath) {
    this.#wal = `${resolve(databasePath)}-wal`
    this.#directory = dirname(this.#wal)
    this.#syncPath = syncPath
  }

  /** Resolves once every commit made before the call is on disk. */
  readonly sync: LogSync = async () => {
    if (this.#running === undefined) return await this.#start()
    // The running sync may have begun before the caller's commit: the next one covers it.
    this.#next ??= this.#running.then(() => undefined, () => undefined).then(async () => {
      this.#next = undefined
      return await this.#start()
    })
    return await this.#next
  }

  async #start (): Promise<void> {
    const running = this.#syncOnce()
    this.#running = running
    try {
      await running
    } finally {
      if (this.#running === running) this.#running = undefined
    }
  }

  async #syncOnce (): Promise<void> {
    await this.#syncPath(this.#wal, false)
    if (this.#directorySynced) return
    try {
      await this.#syncPath(this.#directory, true)
    } catch (error) {
      // Windows opens no directory for fsync; there the file's own sync is what there is.
      if (process.platform !== 'win32') throw error
    }
    this.#directorySynced = true
  }
}

/** The log sync for a connection in WAL mode; undefined for another journal mode, whose accepts keep `synchronous=FULL`. */
export function walSyncOf (db: { pragma: (source: string, options: { simple: true }) => unknown }, databasePath: string): LogSync | undefined {
  return db.pragma('journal_mode', { simple: true }) === 'wal' ? new WalSync(databasePath).sync : undefined
}
