// Reading events back from the BullMQ inbox: `outcome(id)`, `deadLetters()`, and
// `events(query)`, the dashboard's listing, answered from sorted sets so that a
// large queue costs a bounded scan, never a walk over every job.
import type { Job, Queue } from 'bullmq'
import { checkEventQuery } from '../core/event-query.js'
import type { EventQuery } from '../core/inbox.js'
import type { EventOutcome, OutcomeState } from '../core/outcome.js'
import { JOB_RECEIVED_AT_LUA, jobIdFor, pendingKey, toOutcome, type JobData } from './jobs.js'
import { acceptedUnrun } from './pending.js'
import { defineScripts } from './scripts.js'

/**
 * Entries looked at per set and query. Pending events come from the pending
 * index (pending.ts), scored by receivedAt: the range is the query's, the
 * order exact, and the scan stops at `limit` matches, so only a type filter
 * that matches rarely reads this many. Done and dead ones come from BullMQ's
 * completed and failed sets, scored by when each finished: `since` bounds the
 * range (an event finished after it was received), then at most this many
 * newest (or, oldest first, oldest) finished are read and filtered by type and
 * receivedAt. So on a set larger than this, a listing of done or dead events
 * with `until` far in the past, or a rare type, may come back short: narrow it
 * with `since`, or look an event up by id (`outcome(id)`).
 */
export const SCAN_LIMIT = 1_000

/**
 * KEYS: the set to read, completed, failed. ARGV: min, max, '1' for descending,
 * entries to read, a job's key without its id, type or '', since or '', until
 * or '', limit, '1' when the set is the pending index, handler or ''. Answers
 * id, receivedAt pairs; a pending index entry only when its score is its job's
 * receivedAt, as a worker judges it (pending.ts). With a handler, only jobs whose attempt log has a run of
 * it (failed or deferred): their data decoded, so that filter costs a decode
 * per entry looked at. receivedAt is read from the job's data (`jobReceivedAt`, jobs.ts).
 */
const LIST_LUA = `${JOB_RECEIVED_AT_LUA}
local entries
if ARGV[3] == '1' then
  entries = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[2], ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[4]))
else
  entries = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[2], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[4]))
end
local since = tonumber(ARGV[7])
local before = tonumber(ARGV[8])
local limit = tonumber(ARGV[9])
local index = ARGV[10] == '1'
local handler = ARGV[11]
local function failedOn (data)
  if not data then return false end
  local ok, decoded = pcall(cjson.decode, data)
  if not ok or type(decoded) ~= 'table' or type(decoded.attemptLog) ~= 'table' then return false end
  for _, entry in ipairs(decoded.attemptLog) do
    if type(entry) == 'table' and entry.handler == handler then return true end
  end
  return false
end
local found = {}
for i = 1, #entries, 2 do
  local id = entries[i]
  local fields = redis.call('HMGET', ARGV[5] .. id, 'name', 'data')
  local finished = index and (redis.call('ZSCORE', KEYS[2], id) or redis.call('ZSCORE', KEYS[3], id))
  if fields[1] and not finished and (ARGV[6] == '' or fields[1] == ARGV[6]) and (handler == '' or failedOn(fields[2])) then
    local at = jobReceivedAt(fields[2])
    -- An index entry counts only with its job's receivedAt as its score: one left
    -- by an earlier job of a reused id is not this job's (pending.ts, LISTED_LUA).
    if index and at ~= tonumber(entries[i + 1]) then at = nil end
    if at and (not since or at >= since) and (not before or at < before) then
      found[#found + 1] = id
      found[#found + 1] = tostring(at)
      if index and #found >= 2 * limit then break end
    end
  end
end
return found`

const LIST = 'sirWebhooksListEvents'
const SCRIPTS = { [LIST]: { numberOfKeys: 3, readOnly: true, lua: LIST_LUA } }

/** Where each state's events are, and the BullMQ state `toOutcome` reads. */
const SOURCES: Record<OutcomeState, { key: (queue: Queue<JobData>) => string, state: string, index: boolean }> = {
  pending: { key: pendingKey, state: 'waiting', index: true },
  done: { key: (queue) => queue.toKey('completed'), state: 'completed', index: false },
  dead: { key: (queue) => queue.toKey('failed'), state: 'failed', index: false }
}

export async function listEvents (queue: Queue<JobData>, query: EventQuery | undefined): Promise<EventOutcome[]> {
  const checked = checkEventQuery(query)
  const handler = checked.handler
  const client = await queue.client
  defineScripts(client, SCRIPTS)
  const descending = checked.order === 'DESC'
  const states: OutcomeState[] = checked.state === undefined ? ['pending', 'done', 'dead'] : [checked.state]
  const found = await Promise.all(states.map(async (state) => {
    const source = SOURCES[state]
    const min = checked.since === undefined ? '-inf' : String(checked.since)
    const max = source.index && checked.until !== undefined ? `(${checked.until}` : '+inf'
    const pairs = await client.runCommand(LIST, [
      source.key(queue), queue.toKey('completed'), queue.toKey('failed'),
      min, max, descending ? '1' : '0', String(SCAN_LIMIT), queue.toKey(''), checked.type ?? '',
      checked.since === undefined ? '' : String(checked.since), checked.until === undefined ? '' : String(checked.until),
      String(checked.limit), source.index ? '1' : '0', handler ?? ''
    ]) as string[]
    const rows: Array<{ id: string, at: number, state: string }> = []
    for (let index = 0; index + 1 < pairs.length; index += 2) rows.push({ id: pairs[index] as string, at: Number(pairs[index + 1]), state: source.state })
    return rows
  }))
  const rows = found.flat().sort((x, y) => descending ? y.at - x.at : x.at - y.at).slice(0, checked.limit)
  const jobs = await Promise.all(rows.map(async (row) => ({ row, job: await queue.getJob(row.id) as Job<JobData> | undefined })))
  return jobs.filter(({ job }) => job !== undefined).map(({ row, job }) => toOutcome(job as Job<JobData>, row.state))
}

/** One event by id; undefined also for a held job nobody set the key for: a refused delivery, not recorded. */
export async function outcomeOf (queue: Queue<JobData>, id: string, seenKey: (jobId: string) => string): Promise<EventOutcome | undefined> {
  const job = await queue.getJob(jobIdFor(id))
  if (job === undefined) return undefined
  const state = await job.getState()
  // Not yet run and not accepted, as a worker judges it (pending.ts): its
  // delivery was refused (or is being answered). A deferred job was answered,
  // whether or not its key has expired since.
  if (state !== 'completed' && state !== 'failed' && job.attemptsMade === 0 && (job.data.deferredRuns ?? 0) === 0) {
    const jobId = job.id ?? ''
    const client = await queue.client
    if (!await acceptedUnrun(queue, jobId, job.data.receivedAt, async () => await client.get(seenKey(jobId)) !== null)) return undefined
  }
  return toOutcome(job, state)
}

/** The newest `limit` dead letters. */
export async function listDeadLetters (queue: Queue<JobData>, limit: number): Promise<EventOutcome[]> {
  const jobs = await queue.getJobs(['failed'], 0, limit - 1, true)
  return jobs.filter((job): job is Job<JobData> => job !== undefined).map((job) => toOutcome(job, 'failed'))
}
