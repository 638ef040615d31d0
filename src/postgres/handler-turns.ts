import type { PoolClient } from 'pg'
import type { HandlerRun, InboxRuntime } from '../core/inbox.js'
import type { HandlerOrdering } from '../core/ordering/engine.js'
import type { PostgresHandlerExtra } from './run-event.js'
import { checkTransaction, renewSavepoint, type Savepoint } from './savepoint.js'

/**
 * The runtime that one event's attempt (core/attempt.ts, core/flow/attempt.ts)
 * runs its handlers through, on the batch's open transaction: one handler at a
 * time (the engine starts the admitted ones together; one client runs one query
 * at a time, and each handler's writes are its savepoint's), the attempt
 * counted before the first run and only if one runs (a run deferred before it
 * starts uses none), and a handler that threw, `RetryLater` included, rolled
 * back to its savepoint: nothing of it commits. Successes are held for
 * `told()`, after the COMMIT that records them. An ordered event's runs carry
 * where it stands in its key (`ordering`): the handler context's, and the dead letter's.
 */
export class HandlerTurns {
  readonly runtime: InboxRuntime
  readonly #outer: InboxRuntime
  readonly #client: PoolClient
  readonly #savepoint: Savepoint
  readonly #countAttempt: () => Promise<void>
  #counted: Promise<void> | undefined
  #queue: Promise<void> = Promise.resolve()
  readonly #succeeded: HandlerRun[] = []
  /** The transaction (or the attempt count) broke: the batch is lost, whatever the handlers did. */
  broken: unknown

  constructor (outer: InboxRuntime, client: PoolClient, savepoint: Savepoint, countAttempt: () => Promise<void>, ordering?: HandlerOrdering) {
    const told = (run: HandlerRun): HandlerRun => ordering === undefined ? run : { ...run, ordering }
    this.#outer = outer
    this.#client = client
    this.#savepoint = savepoint
    this.#countAttempt = countAttempt
    this.runtime = {
      options: outer.options,
      logger: outer.logger,
      get signal () { return outer.signal },
      get hasHandlers () { return outer.hasHandlers },
      flow: outer.flow,
      handlersFor: (type) => outer.handlersFor(type),
      runHandler: async (run) => {
        const turn = this.#queue.then(async () => { await this.#run(told(run)) })
        this.#queue = turn.catch(() => {})
        await turn
      },
      handlerSucceeded: (run) => { this.#succeeded.push(told(run)) },
      handlerRetrying: (run, error, retryInMs) => { outer.handlerRetrying(told(run), error, retryInMs) },
      handlerFailed: async (run, error) => { await outer.handlerFailed(told(run), error) },
      deadLetter: async (deadLetter) => { await outer.deadLetter(deadLetter) }
    }
  }

  /** Whether a run started: the attempt was counted. */
  get counted (): boolean {
    return this.#counted !== undefined
  }

  /** Tells the receiver of the runs that succeeded: call once their records have committed. */
  told (): void {
    for (const run of this.#succeeded) this.#outer.handlerSucceeded(run)
  }

  async #run (run: HandlerRun): Promise<void> {
    const client = this.#client
    const savepoint = this.#savepoint
    if (this.broken !== undefined) throw this.broken
    // Shutdown: no handler starts; the batch is rolled back (run-event.ts).
    if (this.#outer.signal.aborted) throw new Error('the receiver is closing')
    try {
      await (this.#counted ??= this.#countAttempt())
      // The last handler's writes stay; this one's start from here.
      if (!savepoint.fresh) await renewSavepoint(client, savepoint)
    } catch (error) {
      this.broken ??= error
      throw error
    }
    savepoint.fresh = false
    try {
      await this.#outer.runHandler(run, { transaction: client } satisfies PostgresHandlerExtra)
      await checkTransaction(client, savepoint)
    } catch (error) {
      try {
        await client.query('ROLLBACK TO SAVEPOINT sir_handler')
      } catch (rollbackError) {
        // The handler ended the transaction itself: the batch is lost.
        this.broken ??= rollbackError
      }
      savepoint.fresh = true
      throw error
    }
  }
}
