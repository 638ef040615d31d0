// Ordering's state in Redis for the BullMQ inbox, as one Lua script with an operation per
// call, so each question (take, release, block, unblock) is atomic across every worker on
// the queue. The layout and why it needs no lease are in docs/design.md ("Ordering").

/**
 * Keys under `<prefix>:<queue>:sir-order:` (ARGV[2]): `line:<key>` a sorted set
 * of the key's unfinished events, scored by createdAt, each member
 * `<seq, 16 digits>:<jobId>` so that equal createdAts sort in acceptance order
 * (`seq` is an INCR); `state:<key>` a hash (`live`, `blocked`, `newest`), given
 * the dedupe window as its TTL once the key has nothing unfinished; `members`
 * jobId -> member; `waiting` the keys with an event waiting its turn; `blocked`
 * key -> the blocked event, as JSON. ARGV[3] is BullMQ's own `<prefix>:<queue>:`,
 * read to tell whether a job of a key still exists, finished or died.
 *
 * The key is held by a job, not by a process: a run that crashes leaves its job
 * active, BullMQ's stalled-job check puts it back, and it takes its key again
 * (`live` is already its own). A job that ended without the store hearing of it
 * (removed, or failed by BullMQ after stalling too often) is found when another
 * job of its key asks, and let go (or, dead under `onDeadLetter: 'block'`, blocks).
 */
export const ORDER_LUA = `
local op, base, jobBase, key = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local id, now, ttl, mode = ARGV[5], tonumber(ARGV[8]), tonumber(ARGV[9]), ARGV[10]
local line = base .. 'line:' .. key
local state = base .. 'state:' .. key
local members = base .. 'members'
local waiting = base .. 'waiting'
local blockedIndex = base .. 'blocked'

local function idOf (member) return string.sub(member, 18) end

local function enqueue (jobId, createdAt)
  local member = redis.call('HGET', members, jobId)
  if member then return member end
  member = string.format('%016d', redis.call('INCR', base .. 'seq')) .. ':' .. jobId
  redis.call('ZADD', line, createdAt, member)
  redis.call('HSET', members, jobId, member)
  return member
end

local function remove (jobId)
  local member = redis.call('HGET', members, jobId)
  if member then
    redis.call('ZREM', line, member)
    redis.call('HDEL', members, jobId)
  end
end

local function setBlocked (jobId, eventId)
  redis.call('HSET', state, 'blocked', jobId)
  redis.call('HDEL', state, 'live')
  redis.call('HSET', blockedIndex, key, cjson.encode({ jobId = jobId, eventId = eventId, since = now }))
end

local function clearBlocked ()
  redis.call('HDEL', state, 'blocked')
  redis.call('HDEL', blockedIndex, key)
end

-- Keeps the waiting index and the state's TTL right after any change to the key.
local function tidy ()
  local count = redis.call('ZCARD', line)
  local live = redis.call('HGET', state, 'live')
  local blocked = redis.call('HGET', state, 'blocked')
  if live and redis.call('HEXISTS', members, live) == 1 then count = count - 1 end
  if blocked and blocked ~= live and redis.call('HEXISTS', members, blocked) == 1 then count = count - 1 end
  if count > 0 then redis.call('ZADD', waiting, 0, key) else redis.call('ZREM', waiting, key) end
  if redis.call('ZCARD', line) == 0 and not live and not blocked then
    redis.call('PEXPIRE', state, ttl)
  else
    redis.call('PERSIST', state)
  end
end

-- 'alive', or what became of a job of the key that ended without the store hearing of it.
local function settle (jobId)
  local gone = redis.call('EXISTS', jobBase .. jobId) == 0 or redis.call('ZSCORE', jobBase .. 'completed', jobId)
  local dead = not gone and redis.call('ZSCORE', jobBase .. 'failed', jobId)
  if not gone and not dead then return 'alive' end
  if redis.call('HGET', state, 'live') == jobId then redis.call('HDEL', state, 'live') end
  if dead and mode == 'block' then
    setBlocked(jobId, '')
    return 'blocked'
  end
  remove(jobId)
  return 'gone'
end

-- The job to run next on the key, when none runs and the key is not blocked.
local function nextHead ()
  if redis.call('HGET', state, 'live') or redis.call('HGET', state, 'blocked') then return '' end
  local first = redis.call('ZRANGE', line, 0, 0)[1]
  if not first then return '' end
  return idOf(first)
end

-- Every answer ends with the counts, so this process's stats() are fresh after its own changes.
local function reply (answer)
  answer[#answer + 1] = redis.call('ZCARD', waiting)
  answer[#answer + 1] = redis.call('HLEN', blockedIndex)
  return answer
end

if op == 'enqueue' then
  enqueue(id, ARGV[6])
  tidy()
  return reply({ '' })
elseif op == 'take' then
  local member = enqueue(id, ARGV[6])
  local blocked = redis.call('HGET', state, 'blocked')
  -- Its own block: the dead letter was re-driven, which moves the key on.
  if blocked == id then clearBlocked() blocked = false end
  if blocked then tidy() return reply({ 'blocked' }) end
  local live = redis.call('HGET', state, 'live')
  -- Its own already (a retry, a run deferred by flow control, a crashed run taken back):
  -- an older event of the key that arrived since waits behind it.
  if live == id then tidy() return reply({ 'taken', redis.call('HGET', state, 'newest') or '' }) end
  if live then
    local was = settle(live)
    if was ~= 'gone' then tidy() return reply({ was == 'alive' and 'busy' or 'blocked' }) end
  end
  for _ = 1, 1000 do
    local first = redis.call('ZRANGE', line, 0, 0)[1]
    if first == member then break end
    local was = settle(idOf(first))
    if was ~= 'gone' then tidy() return reply({ was == 'alive' and 'behind' or 'blocked' }) end
  end
  local notBefore = tonumber(ARGV[7])
  if notBefore > now then tidy() return reply({ 'held', tostring(notBefore - now) }) end
  redis.call('HSET', state, 'live', id)
  tidy()
  return reply({ 'taken', redis.call('HGET', state, 'newest') or '' })
elseif op == 'release' then
  remove(id)
  if redis.call('HGET', state, 'live') == id then redis.call('HDEL', state, 'live') end
  local handled = ARGV[6]
  if handled ~= '' then
    local newest = redis.call('HGET', state, 'newest')
    if not newest or tonumber(handled) > tonumber(newest) then redis.call('HSET', state, 'newest', handled) end
  end
  local next = nextHead()
  tidy()
  return reply({ next })
elseif op == 'block' then
  if not redis.call('HGET', state, 'blocked') then setBlocked(id, ARGV[11]) end
  tidy()
  return reply({ '' })
elseif op == 'unblock' then
  local blocked = redis.call('HGET', state, 'blocked')
  if not blocked then return reply({ 'no' }) end
  remove(blocked)
  clearBlocked()
  local next = nextHead()
  tidy()
  return reply({ 'yes', next })
elseif op == 'next' then
  return reply({ nextHead() })
elseif op == 'counts' then
  return reply({})
end
return redis.error_reply('sir-webhooks ordering: unknown operation ' .. op)`
