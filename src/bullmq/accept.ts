// Taking one delivery into the BullMQ queue: the dedupe check, the queue bound, the held
// job, the seen-mark and the promotion, in the order that keeps "no order of failures
// marks an event seen that was not queued".
import { createHash } from 'node:crypto'
import type { Job, Queue } from 'bullmq'
import type { AnyEvent } from '../core/events.js'
import type { AcceptOutcome, InboxRuntime } from '../core/inbox.js'
import type { BacklogCount } from './backlog-count.js'
import { HOLD_MS, jobIdFor, markSeenOn, type JobData } from './jobs.js'
import { forLog } from './redis-state.js'

export interface AcceptStep {
  queue: Queue<JobData>
  runtime: InboxRuntime
  /** The dedupe key of a job id. */
  seenKey: (jobId: string) => string
  dedupeSeconds: number
  retentionSeconds: number
  deadLetterSeconds: number | undefined
  /** Unfinished jobs from which the answer is `full` (core/backlog-bound.ts); 0 while Redis memory is past its share. */
  limit: number
  backlog: BacklogCount
}

/** What the seen key holds: when the event was accepted and, when known, a digest of its body. */
export function seenValue (receivedAt: number, digest: string | undefined): string {
  return digest === undefined ? String(receivedAt) : `${receivedAt}:${digest}`
}

export function bodyDigest (body: Uint8Array | string): string {
  return createHash('sha256').update(body).digest('base64url')
}

/**
 * A duplicate, told apart by whether its body is the one first recorded under
 * the id. Keys set before bodies were recorded, or a delivery with no raw body,
 * cannot tell: plain `duplicate`.
 */
function duplicateOf (seen: string, digest: string | undefined): AcceptOutcome {
  const stored = seen.split(':')[1]
  if (stored === undefined || digest === undefined) return 'duplicate'
  return stored === digest ? 'duplicate' : 'duplicate-differs'
}

/**
 * The id's job is done or dead and still kept, its key gone (the key counts from
 * the accept, the record from when it finished, or forever for a dead one): adding
 * it again does nothing and it will not run again, so the record answers for the
 * id, by the body it holds. Once the record is removed too, the id is new again.
 */
async function recordedDuplicate (queue: Queue<JobData>, jobId: string, digest: string | undefined): Promise<AcceptOutcome> {
  const body = (await queue.getJob(jobId))?.data.body
  if (typeof body !== 'string' || digest === undefined) return 'duplicate'
  return bodyDigest(body) === digest ? 'duplicate' : 'duplicate-differs'
}

/**
 * Ends a job's hold. It fails when the job is not held (added by an older
 * version, or running or done already) or Redis failed: then the hold runs out
 * and the job runs, its key being set.
 */
async function promoted (job: Job<JobData>): Promise<void> {
  await job.promote().catch(() => {})
}

export async function acceptInto (step: AcceptStep, event: AnyEvent, receivedAt: number, rawBody: Uint8Array | undefined, abandoned: AbortSignal): Promise<AcceptOutcome> {
  const { queue, runtime } = step
  const client = await queue.client
  const jobId = jobIdFor(event.id)
  const seenKey = step.seenKey(jobId)
  const digest = rawBody === undefined ? undefined : bodyDigest(rawBody)
  const [seen, unfinished] = await Promise.all([client.get(seenKey), step.backlog.unfinished(step.limit)])
  if (seen !== null) return duplicateOf(seen, digest)
  if (unfinished >= step.limit) return 'full'
  // Redis answered too late for this delivery, which already got its 503: add nothing.
  if (abandoned.aborted) return 'unavailable'
  // One copy of the event: the exact body when there is one (parsed again when
  // the job runs), else the event (a caller of accept that has no body).
  const data: JobData = rawBody === undefined
    ? { event, receivedAt }
    : { body: Buffer.from(rawBody.buffer, rawBody.byteOffset, rawBody.byteLength).toString('utf8'), receivedAt }
  // The key, computed once, kept with the job: every worker orders by what the accept computed.
  const ref = runtime.ordering?.refFor(event, receivedAt)
  if (ref !== undefined) data.ordering = { key: ref.key, createdAt: ref.createdAt, notBefore: ref.notBefore }
  // Held: if this delivery is refused while the add is in flight, the job
  // exists but must not run, since "503 records nothing".
  const job = await queue.add(event.type, data, {
    jobId,
    delay: HOLD_MS,
    attempts: runtime.options.retry.attempts,
    backoff: { type: 'sir-webhooks' },
    removeOnComplete: { age: step.retentionSeconds },
    removeOnFail: step.deadLetterSeconds === undefined ? false : { age: step.deadLetterSeconds }
  })
  step.backlog.added()
  // Too late for this answer: the sender gets a 503 and retries; the held job
  // stays held until a retry sets the key. Nothing is marked seen here.
  if (abandoned.aborted) return 'unavailable'
  // The mark checks, in the same script, that the job still exists: a Redis that
  // restarted without persistence since the add lost it, and must not be told
  // the id was seen (a mark re-sent after the restart would otherwise be). And
  // that it can still run: a done or dead job the add left as it was will not.
  const marking = markSeenOn(client, queue, seenKey, jobId, seenValue(receivedAt, digest), step.dedupeSeconds)
  // An event without an ordering key is promoted in the same round trip: the
  // promotion is written after the mark on the same connection, so Redis runs it
  // after, except when the mark has to be sent again (NOSCRIPT after a restart
  // flushed the scripts, a cluster redirect): then the job may run before its key
  // is set, and the worker reads the key again for a moment before holding it
  // (worker.ts). The promotion moves only a held job, and whatever the mark found
  // a held job of this id should run: its key is set, now or by an earlier
  // delivery. A mark that failed leaves the job keyless: it is held again, and a
  // 503 still records nothing.
  const promoting = ref === undefined ? promoted(job) : undefined
  const marked = await marking
  if (marked === 'no-job') {
    runtime.logger.warn({ event: { id: event.id, type: event.type } },
      'the BullMQ inbox lost the job it had just added (did Redis restart without persistence?); the delivery gets 503 and its retry queues it again')
    return 'unavailable'
  }
  if (marked === 'finished') return await recordedDuplicate(queue, jobId, digest)
  if (marked !== 'marked') return duplicateOf(marked.seen, digest)
  if (ref !== undefined) {
    // Before the promotion, so the job is in its key's line when it first runs. Should
    // this fail, the job's first take puts it there: the accept stands.
    const ordering = runtime.ordering
    await Promise.resolve().then(async () => { await ordering?.store.enqueue({ ...ref, jobId } as typeof ref) }).catch((error: unknown) => {
      runtime.logger.warn({ err: forLog(error), event: { id: event.id, type: event.type } }, 'the BullMQ inbox could not put the event in its ordering key\'s line; it is put there when it runs')
    })
  }
  // The key is set, so the event must run even if this answer is now late
  // (another delivery of the id may already have been told "duplicate").
  await (promoting ?? promoted(job))
  return 'accepted'
}
