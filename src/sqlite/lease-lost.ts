import type { AttemptFailure } from '../core/attempt.js'
import type { AnyEvent } from '../core/events.js'
import type { WebhookLogger } from '../core/logger.js'
import type { EventRow, Stale, Statements } from './schema.js'
import { idFromKey } from './ids.js'

/** A run whose outcome write matched no row: how long it ran, and how it ended. */
export interface LateRun {
  ranMs: number
  /** The handlers that have succeeded, as stored, when every one did. */
  succeeded?: string
  /** The last failure, when one failed. */
  failure?: AttemptFailure
  /** What its handlers were told (record-schema.ts): recorded with the outcome this run writes. */
  stale?: Stale
}

export interface LeaseLostParts {
  logger: WebhookLogger
  sql: Statements
  leaseMs: number
  now: number
  /** An outcome write, through the runner's group commit and health tracking. */
  write: (run: () => number) => Promise<number>
}

/**
 * The run's lease ran out before it ended (the event loop was blocked, or the
 * process stopped, for longer than `leaseMs`) and another run started the event,
 * or finished it. That is no handler failure, and it is logged rather than
 * passed over. A run whose handlers all succeeded finishes the event: left to
 * the run that took over, two processes that each block past the lease passed
 * one event back and forth, each start an attempt, until it was dead-lettered as
 * `handler_failed` with no run failed. A failed run leaves the outcome to the
 * run that took over, which retries or dead-letters it as usual.
 */
export async function afterLeaseLost (parts: LeaseLostParts, row: EventRow, event: AnyEvent, run: LateRun): Promise<void> {
  const { logger, sql, leaseMs, now } = parts
  const fields = { event: { id: event.id, type: event.type }, ranMs: run.ranMs, leaseMs }
  const current = sql.get.get(row.id)
  if (current?.state !== 'pending') {
    logger.warn({ ...fields, state: current?.state }, 'this run of the event is not recorded: another run finished it first, after one of the two outlived its lease')
    return
  }
  if (run.succeeded === undefined) {
    logger.warn({ ...fields, handler: run.failure?.key, err: run.failure?.error },
      "the event's lease ran out while its handlers ran here, and another process took it over; this run failed, and the outcome is left to that run")
    return
  }
  const note = `lease lost: a run took ${run.ranMs} ms and its lease (leaseMs ${leaseMs}) ran out, so the event was started again elsewhere; its handlers succeeded`
  const succeeded = run.succeeded
  const changes = await parts.write(() => sql.finishAfterLeaseLost.run({ id: row.id, now, succeeded, note, stale: run.stale ?? null }).changes)
  logger.warn({ ...fields, recorded: changes === 1 }, "the event's lease ran out while its handlers ran here, and another process took it over; its handlers succeeded, so it is recorded done")
}

/**
 * An outcome write failed (a full disk, a lock held too long…): the row still
 * says this process runs it. Its lease is expired now (`expire`, undefined once
 * close() gave up on the run), so that it is claimed again and re-run
 * (at-least-once); if even that write fails, the lease runs out within leaseMs,
 * since only rows still running are renewed.
 */
export async function afterOutcomeNotRecorded (logger: WebhookLogger, row: EventRow, error: unknown, expire: (() => Promise<void>) | undefined): Promise<void> {
  const tag = { id: idFromKey(row.id), type: row.type }
  logger.error({ err: error, event: tag }, 'the SQLite inbox could not record an outcome; the event will run again')
  if (expire === undefined) return
  try {
    await expire()
  } catch (expireError) {
    logger.error({ err: expireError, event: tag }, 'the SQLite inbox could not expire the lease either; the event runs again once it lapses')
  }
}
