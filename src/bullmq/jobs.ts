// The BullMQ inbox's pieces that are not the inbox: the job's shape, its id, the dedupe key
// script, how a job reads as an outcome, and loading the optional peer.
import { createHash } from 'node:crypto'
import type * as BullMQModule from 'bullmq'
import type { ConnectionOptions, Job, Queue, RedisClient } from 'bullmq'
import { parseEnvelope } from '../core/envelope.js'
import type { AnyEvent } from '../core/events.js'
import type { DeferralRecord } from '../core/flow/gate.js'
import type { EventOutcome, OutcomeState } from '../core/outcome.js'
import { attemptRecords, type StoredAttempt } from './attempt-log.js'
import { TURN_BATCH_MAX, TurnBatches } from './turn-batch.js'
import type { StoredOrdering } from './ordering-store.js'
import { defineScripts } from './scripts.js'

export type BullMQ = typeof BullMQModule

/** The pending index: ids of events accepted and not finished, scored by receivedAt (see pending.ts). */
export function pendingKey (queue: Queue<JobData>): string {
  return queue.toKey('sir-pending')
}

/**
 * Lua: `jobReceivedAt(data)`, the receivedAt in a job's data (its `data` hash
 * field), or nil. By a pattern when the data starts with the body (a JSON
 * string, in which every quote is escaped, so the first unescaped
 * `"receivedAt":` is the job's own), else decoded. The pending index scores an
 * entry by it, and every reader of the index matches an entry to its job by it.
 */
export const JOB_RECEIVED_AT_LUA = `
local function jobReceivedAt (data)
  if not data then return nil end
  if string.sub(data, 1, 8) == '{"body":' then return tonumber(string.match(data, '"receivedAt":(%d+)')) end
  local ok, decoded = pcall(cjson.decode, data)
  if ok and type(decoded) == 'table' then return tonumber(decoded.receivedAt) end
  return nil
end`

/**
 * What a job carries: the event once, when it was accepted, and which handlers
 * already succeeded. The event is kept as `body` when the delivery's bytes are
 * known, else (jobs added before bodies were kept, an `accept` given no body) as `event`.
 */
export interface JobData {
  /** The body exactly as received (UTF-8 text: the pipeline parsed it as UTF-8), parsed again when the job runs. */
  body?: string
  /** The parsed event, on jobs that have no `body`. */
  event?: AnyEvent
  receivedAt: number
  /** Keys of the handlers that already succeeded, so a retry runs only the others. */
  succeeded?: string[]
  /** Flow control: times the job was put back with nothing failed (not attempts), and RetryLater records by handler key. */
  deferredRuns?: number
  deferrals?: Record<string, DeferralRecord>
  /** Rate tokens reserved for this job, by handler key: when each is its own (ms since the epoch). */
  reserved?: Record<string, number>
  /** Failed and deferred handler runs, oldest first, the newest 50 (attempt-log.ts). Kept across a redrive. */
  attemptLog?: StoredAttempt[]
  /**
   * Set by a replay of a done job for one handler: only these handler keys run,
   * the others count as succeeded. A completed job does not list its handlers
   * (the last attempt's successes are not written back), so this says it instead.
   */
  replayOnly?: string[]
  /** With the receiver's `ordering` option, the event's place in its key's line, computed once at accept (ordering-store.ts). */
  ordering?: StoredOrdering
  /** Times a worker took the job before its key was set and put it back (worker.ts): not attempts. */
  keyWaits?: number
}

/** What the processor throws when an attempt fails, so BullMQ's backoff uses the delay already logged. */
export class AttemptFailed extends Error {
  readonly retryInMs: number
  constructor (message: string, retryInMs: number) {
    super(message)
    this.name = 'AttemptFailed'
    this.retryInMs = retryInMs
  }
}

/**
 * How long a job is held (delayed) before it may run unless promoted: an ordered
 * event's new job, until its accept has put it in its key's line, and a job a
 * worker took before its key was set (its delivery refused, or not answered and
 * not retried). A held job whose hold runs out runs only if its key is set by
 * then, and is held again otherwise; a retry that sets the key promotes it.
 */
export const HOLD_MS = 60_000

/**
 * bullmq is an optional peer dependency, imported only when a BullMQ inbox is
 * made, so that users of the other inboxes never need it installed.
 */
export async function loadBullmq (): Promise<BullMQ> {
  try {
    return await import('bullmq')
  } catch (error) {
    throw new Error('sir-webhooks: bullmqInbox() needs bullmq 5.66 or later; install it with `npm install bullmq@5`', { cause: error })
  }
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/**
 * BullMQ job ids may not contain ":" nor be integers; event ids are whatever the
 * sender chose. Short ids stay readable in Redis; long ones are hashed, and so
 * are ids with a lone surrogate, which UTF-8 cannot hold.
 */
export function jobIdFor (eventId: string): string {
  // UTF-8 turns every lone surrogate into U+FFFD: such ids would share a job.
  if (LONE_SURROGATE.test(eventId)) return `u${createHash('sha256').update(Buffer.from(eventId, 'utf16le')).digest('hex')}`
  const encoded = Buffer.from(eventId, 'utf8').toString('base64url')
  return encoded.length <= 200 ? `e${encoded}` : `h${createHash('sha256').update(eventId).digest('hex')}`
}

/**
 * The event a job holds, parsed from its body by the pipeline's own parser, so
 * handlers get the event the delivery's parse produced. Undefined only for a
 * body edited in Redis by hand into something that is not an event.
 */
export function jobEvent (data: JobData): AnyEvent | undefined {
  if (typeof data.body !== 'string') return data.event
  const parsed = parseEnvelope(Buffer.from(data.body, 'utf8'))
  return parsed.ok ? parsed.event : undefined
}

export function isClientInstance (connection: ConnectionOptions): boolean {
  return typeof (connection as { duplicate?: unknown }).duplicate === 'function'
}

const stateOf: Partial<Record<string, OutcomeState>> = { completed: 'done', failed: 'dead' }

const MARK_SEEN = 'sirWebhooksMarkSeenIfQueued'
const SEEN_AND_TIME = 'sirWebhooksSeenAndTime'

/**
 * Every key's value, after Redis's clock (seconds, microseconds); a read that
 * fails (a key of another type) answers its error in its place. Not read-only:
 * a replica (a Cluster's scaleReads) would answer with its own clock, the mark
 * then running on the primary's.
 */
const SEEN_AND_TIME_LUA = `
local now = redis.call('TIME')
local reply = { now[1], now[2] }
for i = 1, #KEYS do
  local ok, value = pcall(redis.call, 'GET', KEYS[i])
  if ok then reply[i + 2] = value
  else reply[i + 2] = { err = type(value) == 'table' and value.err or tostring(value) } end
end
return reply`

/**
 * Marks an event id seen only if its job exists and can still run, in one
 * script: atomic, so a mark that reaches Redis late (ioredis re-sends a command
 * that was in flight when the connection dropped) cannot mark an id whose job a
 * Redis restart lost. A job already done or dead (in the completed or failed
 * set: its key expired before the job was removed) will not run again when added
 * anew, so the id is not marked and the caller answers from the job's record;
 * a re-drive marks it, as it is about to run it again. Answers
 * the value already stored when the id was seen before. An event marked (or
 * re-driven) enters the pending index (pending.ts), scored by when its job's
 * event was received (the job's own receivedAt): what `oldestReceivedAt` and `events({ state: 'pending' })` read.
 * With a `markBy` (Redis's clock), a mark that runs later marks nothing: its
 * delivery has had its 503. A mark that finds its job held (in the delayed set)
 * says so: the caller promotes it, and only then. Marks come six keys and five
 * arguments each (markSeenOn), any number of them: the marks of one turn.
 */
const MARK_SEEN_LUA = `${JOB_RECEIVED_AT_LUA}
local now = redis.call('TIME')
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local function mark (seenKey, jobKey, completed, failed, pending, delayed, value, seconds, jobId, redrive, markBy)
  if markBy ~= '' and nowMs > tonumber(markBy) then return 3 end
  -- The entry's score is the job's own receivedAt: a job a refused delivery
  -- added keeps that delivery's, which the retry's add does not change. Read
  -- only when the entry is written: a duplicate's mark reads no job data.
  local function enter ()
    local receivedAt = jobReceivedAt(redis.call('HGET', jobKey, 'data')) or tonumber(string.match(value, '^(%d+)'))
    redis.call('ZADD', pending, receivedAt, jobId)
  end
  local existing = redis.call('GET', seenKey)
  if existing then
    if redrive == '1' and redis.call('EXISTS', jobKey) == 1 then enter() end
    return existing
  end
  if redis.call('EXISTS', jobKey) == 0 then return 0 end
  if redrive ~= '1' and (redis.call('ZSCORE', completed, jobId) or redis.call('ZSCORE', failed, jobId)) then return 2 end
  redis.call('SET', seenKey, value, 'EX', seconds)
  enter()
  if redis.call('ZSCORE', delayed, jobId) then return 4 end
  return 1
end
local replies = {}
for m = 0, #KEYS / 6 - 1 do
  local k, a = m * 6, m * 5
  local ok, reply = pcall(mark, KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], KEYS[k + 5], KEYS[k + 6], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5])
  if ok then replies[m + 1] = reply
  else replies[m + 1] = { err = type(reply) == 'table' and reply.err or tostring(reply) } end
end
return replies`

/**
 * The accept's two scripts, the dedupe read with Redis's clock and the mark.
 * Each takes any number of keys (the reads or marks of one turn), the first
 * argument saying how many.
 */
const SEEN_SCRIPTS = { [SEEN_AND_TIME]: { lua: SEEN_AND_TIME_LUA }, [MARK_SEEN]: { lua: MARK_SEEN_LUA } }

/**
 * What `markSeen` did: marked now (`marked-held`: its job is held, and runs
 * once promoted), not marked because the job is gone or is done or dead
 * already (`finished`) or because it ran past its `markBy` (`late`), or the
 * value an earlier mark stored.
 */
export type MarkResult = 'marked' | 'marked-held' | 'no-job' | 'finished' | 'late' | { seen: string }

/** One id's seen-mark: the key, the job it names, what it holds and for how long. */
export interface SeenMark {
  seenKey: string
  jobId: string
  value: string
  seconds: number
  /** A re-drive marks a done or dead job too, as it is about to run it again. */
  redrive?: boolean
  /** Redis's clock (ms) past which the mark marks nothing: when its delivery's deadline passed. */
  markBy?: number
}

/**
 * Marks the id seen if its job exists and is not finished (unless `redrive`),
 * through BullMQ's client interface, whichever Redis client backs it.
 */
export async function markSeen (queue: Queue<JobData>, mark: SeenMark): Promise<MarkResult> {
  return await markSeenOn(await queue.client, queue, mark)
}

/** A mark as the script takes it: six keys and five arguments. */
interface MarkCall { keys: string[], args: string[] }

const marks = new TurnBatches<MarkCall, unknown>(TURN_BATCH_MAX, async (client, calls) =>
  await (client as RedisClient).runCommand(MARK_SEEN, [calls.length * 6, ...calls.flatMap((call) => call.keys), ...calls.flatMap((call) => call.args)]) as unknown[])

/**
 * `markSeen` on a client already at hand. The marks of one turn go as one
 * script call at the turn's check phase (turn-batch.ts), right behind the
 * turn's corked write: behind every command written on the client before
 * this call, so a job added just before its mark is there when the mark runs,
 * unless Redis makes the client send the add again (NOSCRIPT, a cluster
 * redirect). Each mark runs on its own in the script: one that fails answers
 * its caller with its error, and the others stand.
 */
export async function markSeenOn (client: RedisClient, queue: Queue<JobData>, mark: SeenMark): Promise<MarkResult> {
  defineScripts(client, SEEN_SCRIPTS)
  const result = await marks.add(client, queue.toKey(''), {
    keys: [mark.seenKey, queue.toKey(mark.jobId), queue.toKey('completed'), queue.toKey('failed'), pendingKey(queue), queue.toKey('delayed')],
    args: [mark.value, String(mark.seconds), mark.jobId, mark.redrive === true ? '1' : '0', mark.markBy === undefined ? '' : String(mark.markBy)]
  })
  if (result instanceof Error) throw result
  if (result === 1) return 'marked'
  if (result === 0) return 'no-job'
  if (result === 2) return 'finished'
  if (result === 3) return 'late'
  if (result === 4) return 'marked-held'
  if (typeof result === 'string') return { seen: result }
  throw new Error(`the seen-mark script answered ${typeof result}`)
}

const seenReads = new TurnBatches<string, { seen: string | null, redisNow: number } | Error>(TURN_BATCH_MAX, async (client, keys) => {
  const [seconds, micros, ...seen] = await (client as RedisClient).runCommand(SEEN_AND_TIME, [keys.length, ...keys]) as [string, string, ...unknown[]]
  const redisNow = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
  return seen.map((value) => value instanceof Error ? value : { seen: typeof value === 'string' ? value : null, redisNow })
})

/**
 * The dedupe key's value and Redis's clock (ms), read together: an accept maps
 * its deadline onto Redis's clock from it, whatever the skew between the two
 * hosts. A script, since BullMQ's client interface has no TIME. The reads of
 * one turn go as one script call (turn-batch.ts); `scope` is the queue's key
 * prefix.
 */
export async function seenAndTime (client: RedisClient, scope: string, seenKey: string): Promise<{ seen: string | null, redisNow: number }> {
  defineScripts(client, SEEN_SCRIPTS)
  const read = await seenReads.add(client, scope, seenKey)
  if (read instanceof Error) throw read
  return read
}

const COUNT_FINISHED = 'sirWebhooksCountFinished'
const COUNT_SCRIPTS = { [COUNT_FINISHED]: { numberOfKeys: 1, readOnly: true, lua: "return redis.call('ZCOUNT', KEYS[1], '-inf', ARGV[1])" } }

/**
 * How many jobs of a completed or failed set finished at or before `cutoff`: the
 * sets are scored by finishedOn, the time clean() compares. A read-only script,
 * since BullMQ's client interface has no ZCOUNT.
 */
async function countFinishedBefore (client: RedisClient, key: string, cutoff: number): Promise<number> {
  defineScripts(client, COUNT_SCRIPTS)
  return Number(await client.runCommand(COUNT_FINISHED, [key, String(cutoff)]))
}

/** Attempts started: BullMQ's count, less the takes that found no key set (not attempts: worker.ts). */
export function attemptsStarted (job: Job<JobData>): number {
  return Math.max(0, job.attemptsStarted - (job.data.keyWaits ?? 0))
}

export function toOutcome (job: Job<JobData>, state: string): EventOutcome {
  const event = jobEvent(job.data)
  const outcome: EventOutcome = {
    id: event?.id ?? '',
    type: event?.type ?? job.name,
    state: stateOf[state] ?? 'pending',
    receivedAt: new Date(job.data.receivedAt),
    attempts: attemptsStarted(job)
  }
  if (event !== undefined) outcome.event = event
  if (typeof job.data.body === 'string') outcome.body = job.data.body
  if (typeof job.failedReason === 'string' && job.failedReason.length > 0) outcome.lastError = job.failedReason
  if (typeof job.finishedOn === 'number' && outcome.state !== 'pending') outcome.finishedAt = new Date(job.finishedOn)
  const attemptLog = attemptRecords(job.data.attemptLog)
  if (attemptLog !== undefined) outcome.attemptLog = attemptLog
  if (job.data.ordering?.skipped === 'stale' && outcome.state === 'done') outcome.skipped = 'stale'
  if (job.data.ordering !== undefined) {
    outcome.orderingKey = job.data.ordering.key
    // Written when true (ordering-run.ts, `recordTurn`): a job that ran without it was not stale; one not run yet has none.
    const stale = job.data.ordering.stale ?? (outcome.state !== 'pending' || job.attemptsMade > 0 ? false : undefined)
    if (stale !== undefined) outcome.stale = stale
  }
  // The handlers that finished it, as its retries and a redrive read them. A done
  // job's last attempt does not write its successes back: every handler finished.
  // (A replay for one handler counts the others as finished without listing them.)
  if (outcome.state !== 'done') outcome.handled = [...job.data.succeeded ?? []]
  return outcome
}

/** Jobs by outcome state; `pending` counts every job not yet completed or failed. */
export async function countJobs (queue: Queue<JobData>): Promise<Record<OutcomeState, number>> {
  const counts = await queue.getJobCounts('wait', 'delayed', 'active', 'prioritized', 'paused', 'waiting-children', 'completed', 'failed')
  const { completed = 0, failed = 0, ...pending } = counts
  return { pending: Object.values(pending).reduce((sum, count) => sum + count, 0), done: completed, dead: failed }
}

/**
 * Removes done jobs that finished before `cutoffs.done` and dead ones before
 * `cutoffs.dead` (all kept when undefined), counted back from `now` as BullMQ's clean() counts.
 */
export async function cleanJobs (queue: Queue<JobData>, now: number, cutoffs: { done: number, dead: number | undefined }, dryRun = false): Promise<{ done: number, dead: number }> {
  if (dryRun) {
    const client = await queue.client
    const count = async (key: string | undefined, cutoff: number): Promise<number> => key === undefined ? 0 : await countFinishedBefore(client, key, cutoff)
    return { done: await count(queue.keys.completed, cutoffs.done), dead: cutoffs.dead === undefined ? 0 : await count(queue.keys.failed, cutoffs.dead) }
  }
  const done = await queue.clean(Math.max(0, now - cutoffs.done), 0, 'completed')
  const dead = cutoffs.dead === undefined ? [] : await queue.clean(Math.max(0, now - cutoffs.dead), 0, 'failed')
  return { done: done.length, dead: dead.length }
}
