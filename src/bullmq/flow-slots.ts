// A handler's `concurrency` on the BullMQ inbox, shared by every receiver on the queue:
// one sorted set per handler of the runs holding a slot, each scored by when its lease
// ends (Redis's clock). A run renews its lease while it lasts; a process killed while
// holding one leaves a member that the next take drops once its lease has ended. A job
// put back for want of a slot is woken by the next release.
import { randomUUID } from 'node:crypto'
import type { Queue, RedisClient } from 'bullmq'
import type { JobData } from './jobs.js'
import type { SlotLease } from '../core/flow/store.js'
import { defineScripts } from './scripts.js'

/**
 * Drops the leases that ended, then takes a slot if fewer than ARGV[1] are held:
 * 1 when taken, 0 when all are. One script, so two receivers cannot both take
 * the last slot. The key outlives its last lease by ten leases, then goes: that
 * is only tidying, the ended leases are dropped here.
 */
const TAKE_SLOT_LUA = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local lease = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + lease, ARGV[3])
redis.call('PEXPIRE', KEYS[1], lease * 10)
return 1`

/** Extends a lease still held (XX: one that ended and was dropped is not taken back): 1 when renewed. */
const RENEW_SLOT_LUA = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local lease = tonumber(ARGV[1])
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', now + lease, ARGV[2])
redis.call('PEXPIRE', KEYS[1], lease * 10)
return 1`

/**
 * Gives the slot back and names the job to wake for it: the earliest received
 * of the jobs put back for want of this handler's slot (KEYS[2]) that is still
 * delayed (KEYS[3], BullMQ's delayed set); false when none waits.
 */
const RELEASE_SLOT_LUA = `
redis.call('ZREM', KEYS[1], ARGV[1])
for _ = 1, 10 do
  local first = redis.call('ZPOPMIN', KEYS[2])
  if #first == 0 then return false end
  if redis.call('ZSCORE', KEYS[3], first[1]) then return first[1] end
end
return false`

/** A job put back for want of a slot, by when it was received: the first woken. Tidied a day after the last. */
const WAIT_LUA = `
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], 86400000)
return 1`

const TAKE = 'sirWebhooksTakeSlot'
const RENEW = 'sirWebhooksRenewSlot'
const RELEASE = 'sirWebhooksReleaseSlot'
const WAIT = 'sirWebhooksWaitForSlot'
const SCRIPTS = {
  [TAKE]: { numberOfKeys: 1, lua: TAKE_SLOT_LUA },
  [RENEW]: { numberOfKeys: 1, lua: RENEW_SLOT_LUA },
  [RELEASE]: { numberOfKeys: 3, lua: RELEASE_SLOT_LUA },
  [WAIT]: { numberOfKeys: 1, lua: WAIT_LUA }
}


export interface SlotHooks {
  queue: () => Promise<Queue<JobData>>
  /** The sorted set of a handler's slots. */
  key: (handler: string) => string
  /** The sorted set of the jobs waiting for one of a handler's slots. */
  waitersKey: (handler: string) => string
  /** How long a slot is held without a renewal: the inbox's `lockDurationMs`, as a job's lock. */
  leaseMs: number
  /** Redis failed a release or a renewal: the lease then ends by itself. */
  onError: (error: Error) => void
  /** A run outlived its lease (the event loop stalled past it): its slot may have gone to another run. */
  onLost: (handler: string) => void
}

/** The leases this process holds, renewed together every third of a lease. */
export class RedisSlots {
  readonly #hooks: SlotHooks
  /** Held leases: member → handler. */
  readonly #held = new Map<string, string>()
  #timer: ReturnType<typeof setInterval> | undefined

  constructor (hooks: SlotHooks) {
    this.#hooks = hooks
  }

  async #client (): Promise<RedisClient> {
    const client = await (await this.#hooks.queue()).client
    defineScripts(client, SCRIPTS)
    return client
  }

  async take (handler: string, limit: number): Promise<SlotLease | undefined> {
    const client = await this.#client()
    const member = randomUUID()
    const taken = Number(await client.runCommand(TAKE, [this.#hooks.key(handler), String(limit), String(this.#hooks.leaseMs), member]))
    if (taken !== 1) return undefined
    this.#held.set(member, handler)
    this.#renewing()
    return {
      release: () => {
        if (!this.#held.delete(member)) return
        void this.#release(client, handler, member).catch(this.#hooks.onError)
      }
    }
  }

  async #release (client: RedisClient, handler: string, member: string): Promise<void> {
    const queue = await this.#hooks.queue()
    const jobId: unknown = await client.runCommand(RELEASE, [this.#hooks.key(handler), this.#hooks.waitersKey(handler), queue.toKey('delayed'), member])
    if (typeof jobId !== 'string') return
    // Promoted to wait: it runs as soon as a worker is free. It may have left the
    // delayed set since the script looked (its fallback ran out): nothing to wake then.
    await (await queue.getJob(jobId))?.promote().catch(() => {})
  }

  /**
   * A job was put back because this handler's slots were all taken: the next
   * release wakes it (the earliest received first), rather than each waiting
   * job asking again every 100 ms. Its put-back delay is only the fallback, for
   * a slot that frees by its lease ending (a killed receiver wakes no one).
   */
  async waitFor (handler: string, jobId: string, receivedAt: number): Promise<void> {
    const client = await this.#client()
    await client.runCommand(WAIT, [this.#hooks.waitersKey(handler), String(receivedAt), jobId])
  }

  #renewing (): void {
    if (this.#timer !== undefined) return
    this.#timer = setInterval(() => { void this.#renew() }, Math.max(50, Math.floor(this.#hooks.leaseMs / 3)))
    this.#timer.unref()
  }

  async #renew (): Promise<void> {
    if (this.#held.size === 0) {
      clearInterval(this.#timer)
      this.#timer = undefined
      return
    }
    try {
      const client = await this.#client()
      await Promise.all([...this.#held].map(async ([member, handler]) => {
        const renewed = Number(await client.runCommand(RENEW, [this.#hooks.key(handler), String(this.#hooks.leaseMs), member]))
        if (renewed !== 1 && this.#held.delete(member)) this.#hooks.onLost(handler)
      }))
    } catch (error) {
      this.#hooks.onError(error as Error)
    }
  }

  /** Stops renewing: leases still held end by themselves. */
  close (): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
  }
}
