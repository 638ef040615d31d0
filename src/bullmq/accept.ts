// Taking one delivery into the BullMQ queue: the dedupe check, the queue bound, the job
// (held only when ordered), the seen-mark and, for a held job, the promotion, in the
// order that keeps "no order of failures marks an event seen that was not queued".
import { createHash } from 'node:crypto'
import type { Job, Queue } from 'bullmq'
import type { AnyEvent } from '../core/events.js'
import type { AcceptOutcome, InboxRuntime } from '../core/inbox.js'
import type { BacklogCount } from './backlog-count.js'
import { coalesceWrites } from './coalesce-writes.js'
import { HOLD_MS, jobIdFor, markSeenOn, seenAndTime, type JobData } from './jobs.js'
import { forLog } from './redis-state.js'

export interface AcceptStep {
  queue: Queue<JobData>
  /** bullmq's Job class: the accept adds its job itself, to write its mark in the same round trip. */
  Job: typeof Job
  runtime: InboxRuntime
  /** When (performance.now(), a clock no step moves) this delivery gets its 503 if the accept has not answered. */
  deadlineAt: number
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

export async function acceptInto (step: AcceptStep, event: AnyEvent, receivedAt: number, rawBody: Uint8Array | undefined, abandoned: { readonly aborted: boolean }): Promise<AcceptOutcome> {
  const { queue, runtime } = step
  const client = await queue.client
  const jobId = jobIdFor(event.id)
  const seenKey = step.seenKey(jobId)
  const digest = rawBody === undefined ? undefined : bodyDigest(rawBody)
  coalesceWrites(client)
  // Redis's clock, read with the dedupe key: the mark below is refused past this
  // delivery's deadline by Redis's own clock. Read at most this round trip ago,
  // it maps the deadline onto Redis's clock early, never late.
  const [{ seen, redisNow }, unfinished] = await Promise.all([seenAndTime(client, queue.toKey(''), seenKey), step.backlog.unfinished(step.limit)])
  const markBy = redisNow + (step.deadlineAt - performance.now())
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
  // Ready to run, unless ordered: a worker that takes it reads its key first and
  // puts it back, held, while the key is not set (worker.ts), so a delivery
  // refused while its add was in flight leaves a job that does not run. An
  // ordered event's job is held until the accept has put it in its key's line.
  const job = new step.Job(queue, event.type, data, {
    jobId,
    delay: ref === undefined ? 0 : HOLD_MS,
    attempts: runtime.options.retry.attempts,
    backoff: { type: 'sir-webhooks' },
    removeOnComplete: { age: step.retentionSeconds },
    removeOnFail: step.deadLetterSeconds === undefined ? false : { age: step.deadLetterSeconds }
  }, jobId)
  // The add and the mark leave together, at this turn's check phase (the add in
  // the corked write, the turn's marks in one script call behind it), and run in
  // Redis in that order, one connection keeping it: one round trip where
  // waiting for the add before marking took two. BullMQ writes the add before
  // addJob returns (its own addBulk relies on that); were that to change, the
  // mark would find no job and is asked again below. The mark checks, in the
  // same script, that the job exists and can still run: a failed add, or a
  // Redis that restarted without persistence since, leaves nothing marked; a
  // done or dead job the add left as it was will not run again. And a mark that
  // runs after this delivery's deadline marks nothing (`markBy`): the delivery
  // has had its 503, and a worker that takes its job holds it until a retry
  // sets the key. A mark that ran in time and whose answer came back after the
  // 503 stands, as it always did: the job runs once, and the sender's retry is
  // a duplicate.
  coalesceWrites(client)
  const adding = job.addJob(client)
  const mark = { seenKey, jobId, value: seenValue(receivedAt, digest), seconds: step.dedupeSeconds, markBy }
  const marking = markSeenOn(client, queue, mark)
  const [added, firstMark] = await Promise.allSettled([adding, marking])
  if (added.status === 'rejected') throw added.reason
  step.backlog.added()
  if (firstMark.status === 'rejected') throw firstMark.reason
  const marked = firstMark.value === 'no-job' ? await markSeenOn(client, queue, mark) : firstMark.value
  if (marked === 'late') return 'unavailable'
  if (marked === 'no-job') {
    runtime.logger.warn({ event: { id: event.id, type: event.type } },
      'the BullMQ inbox lost the job it had just added (did Redis restart without persistence?); the delivery gets 503 and its retry queues it again')
    return 'unavailable'
  }
  if (marked === 'finished') return await recordedDuplicate(queue, jobId, digest)
  // The promotion moves only a held job, and whatever the mark found, a held job
  // of this id should run: its key is set, now or by an earlier delivery. It is
  // written once the mark has answered, and not waited for: should it fail, the
  // hold runs out and the job runs, its key being set. An ordered event's
  // duplicate leaves it to the delivery that marked it, which puts the job in
  // its key's line first. A new unordered job is not held: nothing to promote.
  if (marked !== 'marked' && marked !== 'marked-held') {
    if (ref === undefined) void promoted(job)
    return duplicateOf(marked.seen, digest)
  }
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
  if (marked === 'marked-held') {
    coalesceWrites(client)
    void promoted(job)
  }
  return 'accepted'
}
