// Flow control's state for the BullMQ inbox, kept in Redis so that every receiver
// on the queue shares one rate, one concurrency and one pause: a token bucket per
// handler (one Lua script, on Redis's clock), leased run slots (flow-slots.ts) and
// a hash of what is paused.
import type { Queue } from 'bullmq'
import type { RateLimit } from '../core/flow/limits.js'
import type { FlowStore, PauseState, SlotLease } from '../core/flow/store.js'
import { RedisSlots } from './flow-slots.js'
import type { WebhookLogger } from '../core/logger.js'
import type { JobData } from './jobs.js'
import { defineScripts } from './scripts.js'

/**
 * Takes a token if there is one; else answers the ms until there will be, and
 * with ARGV[3] '1' takes that one now (a debt: the next caller waits one more
 * interval), so jobs put back come back each to its own token. Redis's
 * own clock (TIME), so receivers whose clocks disagree still share one rate. The
 * key expires once the bucket would be full again: an idle handler leaves nothing.
 */
const TAKE_TOKEN_LUA = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local perSecond = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * perSecond / 1000)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) * 1000 / perSecond)
  if ARGV[3] == '1' then tokens = tokens - 1 end
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / perSecond) + 1000)
return wait`

const TAKE_TOKEN = 'sirWebhooksTakeToken'
const SCRIPTS = { [TAKE_TOKEN]: { numberOfKeys: 1, lua: TAKE_TOKEN_LUA } }

/** The pause hash's field for `pause()` without a name: no handler name is empty. */
const ALL = ''

/** How often the pause state set by another receiver is read: health() and admissions see it within this. */
export const PAUSE_REFRESH_MS = 500

export class RedisFlowStore implements FlowStore {
  readonly scope = 'Redis'
  readonly #queue: () => Promise<Queue<JobData>>
  readonly #key: (name: string) => string
  readonly #onError: (error: Error) => void
  #state: PauseState = { all: false, handlers: new Set() }
  #timer: ReturnType<typeof setInterval> | undefined
  readonly #slots: RedisSlots

  /**
   * `key` names this queue's flow keys; `onError` hears a refresh that failed (the
   * state then stays as last read). A run slot is leased for `leaseMs` at a time
   * and renewed while the run lasts.
   */
  constructor (queue: () => Promise<Queue<JobData>>, key: (name: string) => string, onError: (error: Error) => void, slots: { leaseMs: number, logger: () => WebhookLogger | undefined }) {
    this.#queue = queue
    this.#key = key
    this.#onError = onError
    this.#slots = new RedisSlots({
      queue,
      key: (handler) => this.#key(`slots:${handler}`),
      waitersKey: (handler) => this.#key(`slot-waiters:${handler}`),
      leaseMs: slots.leaseMs,
      onError,
      onLost: (handler) => {
        slots.logger()?.warn({ handler }, 'a handler run outlived its concurrency slot\'s lease (lockDurationMs): the event loop stalled or Redis was unreachable; another receiver may have started a run in its place')
      }
    })
  }

  /** A run slot shared by every receiver on the queue, leased so a killed process's slot frees itself. */
  async takeSlot (handler: string, limit: number): Promise<SlotLease | undefined> {
    return await this.#slots.take(handler, limit)
  }

  /** The job, put back for want of one of the handler's slots, is woken by the next release. */
  async waitForSlot (handler: string, jobId: string, receivedAt: number): Promise<void> {
    await this.#slots.waitFor(handler, jobId, receivedAt)
  }

  /** Starts reading the shared pause state in the background. */
  start (): void {
    if (this.#timer !== undefined) return
    void this.refresh().catch(this.#onError)
    this.#timer = setInterval(() => { this.refresh().catch(this.#onError) }, PAUSE_REFRESH_MS)
    this.#timer.unref()
  }

  async takeToken (handler: string, rate: Required<RateLimit>, reserve: boolean): Promise<number> {
    const client = await (await this.#queue()).client
    defineScripts(client, SCRIPTS)
    return Number(await client.runCommand(TAKE_TOKEN, [this.#key(`rate:${handler}`), String(rate.perSecond), String(rate.burst), reserve ? '1' : '0']))
  }

  async setPaused (handler: string | undefined, paused: boolean): Promise<void> {
    const queue = await this.#queue()
    const client = await queue.client
    const key = this.#key('paused')
    if (handler === undefined && paused) {
      await client.hset(key, { [ALL]: Date.now() })
      // BullMQ's own pause too: workers stop fetching, so a long pause costs no polling.
      await queue.pause()
    } else if (handler === undefined) {
      await client.del(key)
      await queue.resume()
    } else if (paused) {
      await client.hset(key, { [handler]: Date.now() })
    } else {
      await client.hdel(key, handler)
    }
    await this.refresh()
  }

  pauseState (): PauseState {
    return this.#state
  }

  /** Reads what is paused, as any receiver on this queue left it. */
  async refresh (): Promise<void> {
    const client = await (await this.#queue()).client
    const fields = Object.keys(await client.hgetall(this.#key('paused')))
    this.#state = { all: fields.includes(ALL), handlers: new Set(fields.filter((field) => field !== ALL)) }
  }

  close (): void {
    this.#slots.close()
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
  }
}
