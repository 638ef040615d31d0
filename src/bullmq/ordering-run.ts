// Ordering around one BullMQ job's run: take the job's key before its handlers run (or
// park the job until its key frees), and let the key go when the job's turn ends. An
// attempt that fails, or that flow control defers, keeps the key: only the end of the
// job's turn (handled, skipped as stale, dead) releases it.
import type { Job } from 'bullmq'
import type { AnyEvent } from '../core/events.js'
import type { InboxRuntime } from '../core/inbox.js'
import type { HandlerOrdering, OrderedOutcome } from '../core/ordering/engine.js'
import { STORE_RETRY_MS } from '../core/flow/attempt.js'
import { forLog } from './redis-state.js'
import type { BullMQ, JobData } from './jobs.js'
import { PARK_MS, type BullmqOrderedRef, type RedisOrderingStore } from './ordering-store.js'

/** A job that took its key: what its handlers are told, and whether they run at all (`skipStale`). */
export interface OrderedTurn {
  ref: BullmqOrderedRef
  context: HandlerOrdering
  skip: boolean
}

/**
 * Takes the job's key, or parks the job and throws BullMQ's DelayedError: held
 * (`holdMs`) until its hold ends; behind a run, an older event or a block until
 * the release that makes it the head wakes it (at the latest after PARK_MS).
 * Parking uses no attempt. Undefined for a job without a key.
 */
export async function takeKey (bullmq: BullMQ, runtime: InboxRuntime, store: RedisOrderingStore | undefined, job: Job<JobData>, event: AnyEvent, token: string | undefined): Promise<OrderedTurn | undefined> {
  const stored = job.data.ordering
  const engine = runtime.ordering
  if (stored === undefined || engine === undefined || store === undefined) return undefined
  const ref: BullmqOrderedRef = { id: event.id, jobId: job.id ?? '', key: stored.key, createdAt: stored.createdAt, seq: 0, notBefore: stored.notBefore }
  let delayMs: number
  let parked = false
  try {
    const answer = await store.take(ref, Date.now())
    if (answer.taken) {
      const context = engine.admitted(ref, answer.newestHandledAt)
      return { ref, context, skip: engine.skips(context) }
    }
    parked = answer.wait !== 'held'
    delayMs = answer.wait === 'held' ? Math.max(1, answer.retryInMs ?? 1) : PARK_MS
  } catch (error) {
    // Redis did not answer: not the handlers' failure, so no attempt used.
    runtime.logger.warn({ err: forLog(error), job: { id: job.id } }, 'ordering could not ask Redis for the event\'s key; the run is put off')
    delayMs = STORE_RETRY_MS
  }
  await job.updateData({ ...job.data, deferredRuns: (job.data.deferredRuns ?? 0) + 1 })
  await job.moveToDelayed(Date.now() + delayMs, token)
  // Once delayed, so that a release finds it there to wake; if the release came
  // while it was still running here, it found nothing to wake: look again. Not
  // awaited: BullMQ stops renewing a job's lock by its id when a run of it ends,
  // and a release may promote this job into a new run in this worker meanwhile;
  // a run ending after that one began would leave it without a lock, taken back
  // and run again at once. So nothing is awaited between the park and the throw.
  if (parked) void store.wakeHead(stored.key).catch((error: unknown) => { runtime.logger.warn({ err: forLog(error) }, 'ordering could not look for the next event of a key') })
  throw new bullmq.DelayedError()
}

/**
 * The job's turn ended: its key is released (handled or stale: its createdAt
 * may become the key's newest handled) or, dead, released or blocked as
 * `onDeadLetter` says. A failure here is logged, not thrown: the job's outcome
 * stands, and the next take of the key finds the job finished and lets it go.
 */
export async function endTurn (runtime: InboxRuntime, turn: Pick<OrderedTurn, 'ref'> | undefined, outcome: OrderedOutcome): Promise<void> {
  if (turn === undefined) return
  try {
    await runtime.ordering?.finished(turn.ref, outcome)
  } catch (error) {
    runtime.logger.warn({ err: forLog(error), event: { id: turn.ref.id } }, 'ordering could not release the event\'s key; the next event of the key frees it')
  }
}

/**
 * A job BullMQ failed on its own (recovered from a stall more than
 * `maxStalledCount` times: failed when a worker picks it up, before our
 * processor runs) ended its turn with no release: its key is let go now, or
 * blocked under `onDeadLetter: 'block'`, and the release wakes the key's next
 * event. Without this the key stayed held by a dead job until another job of
 * the key asked again, which a parked job does only when its park (PARK_MS) ends.
 */
export async function endFailedTurn (runtime: InboxRuntime, job: Job<JobData>, event: AnyEvent): Promise<void> {
  const stored = job.data.ordering
  if (stored === undefined || runtime.ordering === undefined) return
  const ref: BullmqOrderedRef = { id: event.id, jobId: job.id ?? '', key: stored.key, createdAt: stored.createdAt, seq: 0, notBefore: stored.notBefore }
  await endTurn(runtime, { ref }, 'dead')
}

/**
 * Keeps in the job what its turn was told, for its record (`outcome(id).stale`,
 * `skipped`): stale, and skipped by `skipStale`. Written only when it differs
 * from what the job holds, so a run that is not stale costs no write (its
 * record reads `stale: false` once it ran); a replayed job that was skipped
 * before loses its `skipped` when it runs.
 */
export async function recordTurn (job: Job<JobData>, turn: OrderedTurn): Promise<void> {
  const stored = job.data.ordering
  if (stored === undefined) return
  const { stale } = turn.context
  if ((stored.stale ?? false) === stale && (stored.skipped === 'stale') === turn.skip) return
  const { skipped: _skipped, ...kept } = stored
  await job.updateData({ ...job.data, ordering: { ...kept, stale, ...(turn.skip ? { skipped: 'stale' as const } : {}) } })
}
