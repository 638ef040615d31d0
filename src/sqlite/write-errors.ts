/** The write lock stayed with another connection until the job's deadline. */
export class StoreBusyError extends Error {
  readonly code = 'SQLITE_BUSY'
  constructor (cause: unknown) {
    super('the SQLite inbox file stayed locked by another connection until the deadline', { cause })
    this.name = 'StoreBusyError'
  }
}

export function isBusy (error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))
}

/** The fsync of the write-ahead log had not finished by the job's deadline (acceptTimeoutMs for an accept). */
export class SyncTimeoutError extends Error {
  constructor () {
    super('the fsync of the SQLite write-ahead log did not finish before the deadline: the disk is slow or hung')
  }
}

/**
 * A durable write (an admin write: redrive, purge, requeue, unblock…) whose
 * transaction COMMITTED, but whose fsync of the write-ahead log failed, hung
 * past its deadline, or was given up by close(): the change is in the file and
 * visible to every reader now, and may or may not survive a power cut.
 *
 * Why an error and not a success with a warning: the caller asked for a durable
 * write, and a resolved promise would promise that; a warning in a log is not
 * seen by the code (or the CLI user) that made the call. Why not the sync's own
 * error, as before: "failed" reads as "nothing happened, try again", while the
 * write did happen, and a retry may do something else (a second redrive of an
 * event already pending answers false). Databases name this third outcome the
 * same way: CockroachDB's "result is ambiguous" (AmbiguousResultError), MongoDB's
 * UnknownTransactionCommitResult. The code says which case it is; `committed` and
 * `result` (what the write returned) let the caller go on without re-reading;
 * `cause` is why its durability is unknown. An accept never surfaces this: its
 * delivery is answered 503, and the sender's retry is then a duplicate.
 */
export class DurabilityUnknownError extends Error {
  readonly code = 'SQLITE_DURABILITY_UNKNOWN'
  readonly committed = true
  readonly result: unknown

  constructor (cause: unknown, result: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause)
    super(`the SQLite write was committed, but whether it reached the disk is unknown (${why}): it is visible now and may be lost to a power cut; check its effect before retrying it`, { cause })
    this.name = 'DurabilityUnknownError'
    this.result = result
  }
}
