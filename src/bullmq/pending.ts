// The BullMQ inbox's pending index: a sorted set of the job ids of events accepted and
// not finished, scored by when each was received. BullMQ's own sets cannot answer "the
// oldest waiting event": a job backing off or deferred sits in `delayed` scored by when
// it runs next, a running one in a list. The accept's mark adds the id (jobs.ts,
// MARK_SEEN_LUA, so a held job of a refused delivery never enters); the worker removes it
// once BullMQ has finished the job. A process killed in between leaves an entry whose
// job is finished or gone: every read drops such entries, so the index stays exact.
import type { Queue, RedisClient } from 'bullmq'
import { JOB_RECEIVED_AT_LUA, pendingKey, type JobData } from './jobs.js'
import { TURN_BATCH_MAX, TurnBatches } from './turn-batch.js'
import { defineScripts } from './scripts.js'

/** KEYS: the index, completed, failed; ARGV[1]: a job's key without its id. Whether the job is still unfinished. */
const STILL_PENDING = `
local function pending (id)
  return redis.call('EXISTS', ARGV[1] .. id) == 1 and not redis.call('ZSCORE', KEYS[2], id) and not redis.call('ZSCORE', KEYS[3], id)
end`

/** Drops the entries of jobs that BullMQ finished (or that are gone); keeps those back to wait for a retry. ARGV[2..]: the ids. */
const FINISHED_LUA = `${STILL_PENDING}
for i = 2, #ARGV do
  if not pending(ARGV[i]) then redis.call('ZREM', KEYS[1], ARGV[i]) end
end
return 1`

/**
 * The received time of the oldest entry whose job is unfinished and carries
 * that time (as LISTED_LUA judges an entry: one left by an earlier job of a
 * reused id is passed over, kept until its job finishes), dropping the entries
 * of finished jobs before it; at most 1 000 entries looked at per call, so a
 * read never holds Redis long (the next read goes on).
 */
const OLDEST_LUA = `${JOB_RECEIVED_AT_LUA}${STILL_PENDING}
local at = 0
for _ = 1, 1000 do
  local first = redis.call('ZRANGE', KEYS[1], at, at, 'WITHSCORES')
  if #first == 0 then return false end
  if not pending(first[1]) then
    redis.call('ZREM', KEYS[1], first[1])
  elseif jobReceivedAt(redis.call('HGET', ARGV[1] .. first[1], 'data')) == tonumber(first[2]) then
    return first[2]
  else
    at = at + 1
  end
end
return false`

/**
 * Whether the id (ARGV[1]) is in the index with the score ARGV[2], its job's
 * receivedAt: an entry left by an earlier job of the same id (one whose
 * removal from the index was lost) has another, and does not count.
 */
const LISTED_LUA = "local score = redis.call('ZSCORE', KEYS[1], ARGV[1]) return (score and tonumber(score) == tonumber(ARGV[2])) and 1 or 0"

const FINISHED = 'sirWebhooksPendingFinished'
const OLDEST = 'sirWebhooksPendingOldest'
const LISTED = 'sirWebhooksPendingListed'
const SCRIPTS = {
  [FINISHED]: { numberOfKeys: 3, lua: FINISHED_LUA },
  [OLDEST]: { numberOfKeys: 3, lua: OLDEST_LUA },
  [LISTED]: { numberOfKeys: 1, lua: LISTED_LUA, readOnly: true }
}

async function prepared (queue: Queue<JobData>): Promise<{ client: RedisClient, keys: string[], jobPrefix: string }> {
  const client = await queue.client
  defineScripts(client, SCRIPTS)
  return { client, keys: [pendingKey(queue), queue.toKey('completed'), queue.toKey('failed')], jobPrefix: queue.toKey('') }
}

/** The jobs finished in one turn, by queue: one script call for all of them (turn-batch.ts). */
const finishing = new TurnBatches<string, undefined>(TURN_BATCH_MAX, async (queue, ids) => {
  const { client, keys, jobPrefix } = await prepared(queue as Queue<JobData>)
  await client.runCommand(FINISHED, [...keys, jobPrefix, ...ids])
  return ids.map(() => undefined)
})

/**
 * BullMQ completed or failed the job: its entry goes unless the job is back to
 * wait for a retry. The jobs a worker finishes in one turn share one call.
 */
export async function jobFinished (queue: Queue<JobData>, jobId: string): Promise<void> {
  await finishing.add(queue, '', jobId)
}

/**
 * Whether the job's event was marked seen and its job has not finished: the
 * mark enters it here in the same script that sets its key, and the entry
 * stays until the job finishes, where the key expires after `dedupeSeconds`.
 * What a worker asks of a job whose key it does not find: accepted so long
 * ago that its key expired (no handler process ran for days), it still runs.
 * The entry must carry this job's receivedAt: a job of a reused id, added by
 * a refused delivery, must not run on an older job's entry.
 */
export async function markedAndUnfinished (queue: Queue<JobData>, jobId: string, receivedAt: number): Promise<boolean> {
  const { client, keys } = await prepared(queue)
  return Number(await client.runCommand(LISTED, [keys[0] as string, jobId, String(receivedAt)])) === 1
}

/**
 * Whether a job not yet run belongs to an accepted delivery: its key is set
 * (`keySet`, asked first), or its key expired since and its pending-index entry
 * carries its receivedAt. One answer for what a worker runs and what
 * `outcome(id)` reports: a job neither finds is a refused delivery's, held
 * until the sender's retry sets its key.
 */
export async function acceptedUnrun (queue: Queue<JobData>, jobId: string, receivedAt: number, keySet: () => Promise<boolean>): Promise<boolean> {
  return await keySet() || await markedAndUnfinished(queue, jobId, receivedAt)
}

/** When the oldest event accepted and not finished was received, or undefined when none is. */
export async function oldestPending (queue: Queue<JobData>): Promise<number | undefined> {
  const { client, keys, jobPrefix } = await prepared(queue)
  const score: unknown = await client.runCommand(OLDEST, [...keys, jobPrefix])
  return score === null || score === undefined ? undefined : Number(score)
}

/**
 * `oldestReceivedAt` is read synchronously (stats(), the OpenTelemetry gauge):
 * the index is read in the background every `everyMs` and the last answer kept.
 */
export class OldestPending {
  #value: number | undefined
  #timer: ReturnType<typeof setInterval> | undefined

  get value (): number | undefined {
    return this.#value
  }

  start (queue: () => Promise<Queue<JobData>>, everyMs: number, onError: (error: Error) => void): void {
    if (this.#timer !== undefined) return
    const read = (): void => {
      queue().then(oldestPending).then((at) => { this.#value = at }, onError)
    }
    read()
    this.#timer = setInterval(read, everyMs)
    this.#timer.unref()
  }

  stop (): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
  }
}
