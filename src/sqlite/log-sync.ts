import { close, fsync, open } from 'node:fs'
import { dirname, resolve } from 'node:path'

/** Makes every commit made so far durable (`sync`, resolved once it is on disk); `close` once no sync is asked for any more. */
export interface LogSync {
  sync: () => Promise<void>
  close: () => void
}

/** The file operations a WalSync uses: node:fs on the thread pool (tests give their own). */
export interface SyncFiles {
  open: (path: string, flags: string) => Promise<number>
  fsync: (fd: number) => Promise<void>
  close: (fd: number) => void
}

const nodeFiles: SyncFiles = {
  open: async (path, flags) => await new Promise((done, fail) => { open(path, flags, (error, fd) => { if (error === null) done(fd); else fail(error) }) }),
  fsync: async (fd) => await new Promise((done, fail) => { fsync(fd, (error) => { if (error === null) done(); else fail(error) }) }),
  close: (fd) => { close(fd, () => {}) }
}

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
 * database, so a synced frame stays durable once the WAL restarts. The file stays
 * open between syncs (one thread-pool hop per sync, not three: each waits for a
 * turn of a busy event loop).
 *
 * A failed fsync is final until the process restarts: on Linux the pages that
 * failed to reach the disk may be marked clean, so a later fsync (on any file
 * descriptor) succeeds without writing them, and WAL recovery after a power cut
 * stops at the first frame missing, losing every commit after it. The failed
 * batch's rows are already visible, so a retry of its deliveries would be
 * answered `duplicate`: instead every sync from then on fails, the deliveries
 * get 503, and `onFailure` marks the inbox degraded (PostgreSQL made the same
 * choice in 2018, "fsyncgate").
 */
export class WalSync implements LogSync {
  readonly #wal: string
  readonly #directory: string
  readonly #files: SyncFiles
  #fd: Promise<number> | undefined
  #directorySynced = false
  /** The sync running, and whether commits were made since it began (they need the next one). */
  #running: Promise<void> | undefined
  #next: Promise<void> | undefined
  /** The first failed fsync: every sync since fails with it. */
  #failed: Error | undefined
  readonly #onFailure: (reason: string) => void
  #closed = false

  constructor (databasePath: string, files: SyncFiles = nodeFiles, onFailure: (reason: string) => void = () => {}) {
    this.#wal = `${resolve(databasePath)}-wal`
    this.#directory = dirname(this.#wal)
    this.#files = files
    this.#onFailure = onFailure
  }

  /** Resolves once every commit made before the call is on disk. */
  readonly sync = async (): Promise<void> => {
    if (this.#failed !== undefined) throw this.#failed
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

  /**
   * Closes the WAL file once the syncs asked for are done (the group commit's close(), after settled()). A sync
   * that close() gave up on (a hung disk) may still run on the thread pool: the file is closed when it ends, not
   * under it, where its descriptor could be reused by another file.
   */
  close (): void {
    const fd = this.#fd
    const running = this.#running ?? Promise.resolve()
    this.#closed = true
    this.#fd = undefined
    fd?.then(async (opened) => { await running.catch(() => {}); this.#files.close(opened) }, () => {})
  }

  async #syncOnce (): Promise<void> {
    // A sync queued behind one that hung past close(): the file is not opened again.
    if (this.#closed) throw new Error('the SQLite inbox was closed before this fsync of its write-ahead log began')
    // Read-write: Windows flushes only a handle that may write.
    const fd = this.#fd ??= this.#files.open(this.#wal, 'r+')
    try {
      await this.#files.fsync(await fd)
    } catch (error) {
      const reason = `an fsync of the SQLite write-ahead log failed (${error instanceof Error ? error.message : String(error)}): what was committed since the last good one may not be on disk; restart the receiver`
      this.#failed ??= Object.assign(new Error(reason), { cause: error })
      this.#onFailure(reason)
      throw this.#failed
    }
    if (this.#directorySynced) return
    try {
      // Read-only: a directory cannot be opened for writing.
      const directory = await this.#files.open(this.#directory, 'r')
      try { await this.#files.fsync(directory) } finally { this.#files.close(directory) }
    } catch (error) {
      // Windows opens no directory for fsync; there the file's own sync is what there is.
      if (process.platform !== 'win32') throw error
    }
    this.#directorySynced = true
  }
}

/** The log sync for a connection in WAL mode; undefined for another journal mode, whose accepts keep `synchronous=FULL`. */
export function walSyncOf (db: { pragma: (source: string, options: { simple: true }) => unknown }, databasePath: string, onFailure?: (reason: string) => void): LogSync | undefined {
  return db.pragma('journal_mode', { simple: true }) === 'wal' ? new WalSync(databasePath, nodeFiles, onFailure) : undefined
}
