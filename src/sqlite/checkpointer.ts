import { createRequire } from 'node:module'
import { resolve } from 'node:path'
import { Worker } from 'node:worker_threads'
import type BetterSqlite3 from 'better-sqlite3'
import type { WebhookLogger } from '../core/logger.js'

/** How often the checkpoint thread copies the WAL into the database file. */
const CHECKPOINT_EVERY_MS = 200
/**
 * The inbox's own connection checkpoints only past this many WAL pages (SQLite's
 * default is 1 000): a backstop, should the thread fall behind or stop.
 */
export const BACKSTOP_PAGES = 10_000
const DEFAULT_PAGES = 1_000
/**
 * Past this many WAL pages the thread's checkpoint is a RESTART. A PASSIVE one
 * copies only the frames there were when it began, and while a backlog drains the
 * inbox commits during each one, so the WAL never had every frame copied when the
 * inbox's next transaction began, which is when SQLite starts the WAL over: it
 * grew to the backstop (41 MB), where the inbox's connection checkpointed on the
 * event loop again. RESTART takes the write lock while it finishes (the inbox's
 * writes wait asynchronously, group-commit.ts), with little left to copy.
 */
const RESTART_PAGES = 2_000

// CommonJS, run with `eval`: the same in the built package and under a TypeScript loader.
const THREAD = `
const { parentPort, workerData } = require('node:worker_threads')
const Database = require(workerData.driver)
const db = new Database(workerData.path)
// How long a RESTART waits for the inbox's transaction to end: they last milliseconds.
db.pragma('busy_timeout = 100')
let failed = false
const timer = setInterval(() => {
  try {
    const [passive] = db.pragma('wal_checkpoint(PASSIVE)')
    if (passive && passive.log >= workerData.restartPages) db.pragma('wal_checkpoint(RESTART)')
    failed = false
  } catch (error) {
    if (!failed) parentPort.postMessage({ failed: String(error && error.code ? error.code + ': ' + error.message : error) })
    failed = true
  }
}, workerData.everyMs)
parentPort.on('message', () => {
  clearInterval(timer)
  try { db.pragma('wal_checkpoint(PASSIVE)') } catch {}
  db.close()
  parentPort.close()
})
`

/**
 * Checkpoints the inbox's WAL on a thread of its own. A checkpoint copies the WAL
 * into the database file and fsyncs both; SQLite runs it inside whichever COMMIT
 * passes 1 000 WAL pages, and better-sqlite3 runs that COMMIT on the event loop:
 * while a backlog drained, about one outcome commit in a hundred held the loop
 * 5–41 ms (more on a busy disk), and the acknowledgements waiting behind it
 * (docs/design.md, "Acknowledgements while a backlog drains"). The thread's own
 * connection runs PASSIVE checkpoints, which take no write lock, every 200 ms
 * (RESTART past 2 000 pages, below); the inbox's connection keeps a checkpoint of
 * its own past 10 000 pages only.
 */
export class Checkpointer {
  readonly #db: BetterSqlite3.Database
  readonly #worker: Worker
  readonly #exited: Promise<void>

  constructor (db: BetterSqlite3.Database, path: string, logger: () => WebhookLogger | undefined) {
    this.#db = db
    const driver = createRequire(import.meta.url).resolve('better-sqlite3')
    this.#worker = new Worker(THREAD, { eval: true, workerData: { driver, path: resolve(path), everyMs: CHECKPOINT_EVERY_MS, restartPages: RESTART_PAGES } })
    this.#exited = new Promise((done) => { this.#worker.once('exit', () => { done() }) })
    db.pragma(`wal_autocheckpoint = ${BACKSTOP_PAGES}`)
    this.#worker.on('message', (message: { failed?: string }) => {
      logger()?.warn({ reason: message.failed }, 'the SQLite inbox could not checkpoint its WAL on its checkpoint thread; it tries again every 200 ms')
    })
    this.#worker.on('error', (error) => {
      logger()?.warn({ err: error }, 'the SQLite inbox\'s checkpoint thread stopped; the inbox\'s own connection checkpoints again, on the event loop')
      this.#inline()
    })
    // After the listeners: a 'message' listener added later refs the worker's port again, and the process would never exit.
    this.#worker.unref()
  }

  /** Stops the thread, after one last checkpoint; the inbox's connection checkpoints again as SQLite does by default. */
  async stop (): Promise<void> {
    // Unref'd while it runs, so that it never holds a process open; ref'd now, or nothing else may keep the process waiting for its exit.
    this.#worker.ref()
    this.#worker.postMessage('stop')
    await this.#exited
    this.#inline()
  }

  #inline (): void {
    if (this.#db.open) this.#db.pragma(`wal_autocheckpoint = ${DEFAULT_PAGES}`)
  }
}

/** The checkpoint thread for a connection in WAL mode; none for another journal mode, which has no WAL to copy. */
export function checkpointerFor (db: BetterSqlite3.Database, path: string, logger: () => WebhookLogger | undefined): Checkpointer | undefined {
  if (db.pragma('journal_mode', { simple: true }) !== 'wal') return undefined
  try {
    return new Checkpointer(db, path, logger)
  } catch (error) {
    // No thread (a runtime without worker_threads, a driver the thread cannot resolve): SQLite's own checkpoints, as before.
    logger()?.warn({ err: error }, 'the SQLite inbox could not start its checkpoint thread; its own connection checkpoints the WAL, on the event loop')
    return undefined
  }
}
