// Ordering's store for the BullMQ inbox: the key's line, its live run, its block and its
// newest handled createdAt kept in Redis (ordering-lua.ts), shared by every worker on the
// queue. Only the head of a key runs: a job that may not take its key is parked (delayed)
// and woken by the release that makes it the head, so no worker polls a busy key.
import type { Queue } from 'bullmq'
import type { BlockedKey, OrderedEventRef, OrderingKeyCounts, OrderingStore, TakeAnswer } from '../core/ordering/store.js'
import { jobEvent, type JobData } from './jobs.js'
import { ORDER_LUA } from './ordering-lua.js'
import { defineScripts } from './scripts.js'

/** An ordered event as this store sees it: its BullMQ job id besides the event's. */
export interface BullmqOrderedRef extends OrderedEventRef {
  readonly jobId: string
}

/** What a job keeps of its place in its key's line (the key is computed once, at accept). */
export interface StoredOrdering {
  key: string
  createdAt: number
  notBefore: number
  /** Set when `skipStale` skipped it: its outcome is `stale`. */
  skipped?: 'stale'
  /** Whether its handlers were told `ordering.stale`; written only when true or changed (ordering-run.ts, `recordTurn`). */
  stale?: boolean
}

/**
 * How long a parked job sleeps at most. The release that makes it the head
 * wakes it sooner; this is for a key freed without a release (its job removed,
 * or failed by BullMQ after stalling), which the next take finds and settles.
 */
export const PARK_MS = 30_000

/** How often the counts other workers changed are read: stats() and health() see them within this. */
const COUNTS_REFRESH_MS = 500

const ORDER = 'sirWebhooksOrder'
const SCRIPTS = { [ORDER]: { numberOfKeys: 0, lua: ORDER_LUA } }

export interface RedisOrderingSettings {
  /** How long a key's newest handled createdAt is kept once the key has nothing unfinished: the dedupe window. */
  ttlMs: () => number
  onDeadLetter: 'skip' | 'block'
  onError: (error: Error) => void
}

export class RedisOrderingStore implements OrderingStore {
  readonly scope = 'Redis'
  readonly #queue: () => Promise<Queue<JobData>>
  readonly #settings: RedisOrderingSettings
  #counts: OrderingKeyCounts = { waiting: 0, blocked: 0 }
  #timer: ReturnType<typeof setInterval> | undefined

  constructor (queue: () => Promise<Queue<JobData>>, settings: RedisOrderingSettings) {
    this.#queue = queue
    this.#settings = settings
  }

  async #run (op: string, key: string, args: { jobId?: string, value?: string | number, notBefore?: number, eventId?: string } = {}): Promise<Array<string | number>> {
    const queue = await this.#queue()
    const client = await queue.client
    defineScripts(client, SCRIPTS)
    const reply = await client.runCommand(ORDER, [op, queue.toKey('sir-order:'), queue.toKey(''), key, args.jobId ?? '', String(args.value ?? ''),
      String(args.notBefore ?? 0), String(Date.now()), String(this.#settings.ttlMs()), this.#settings.onDeadLetter, args.eventId ?? '']) as Array<string | number>
    // The counts end every answer.
    const blocked = Number(reply.pop())
    this.#counts = { waiting: Number(reply.pop()), blocked }
    return reply
  }

  /** In the accept, once the event is marked seen and before its job is promoted. */
  async enqueue (ref: OrderedEventRef): Promise<void> {
    await this.#run('enqueue', ref.key, { jobId: jobIdOf(ref), value: ref.createdAt })
  }

  async take (ref: OrderedEventRef, _now: number): Promise<TakeAnswer> {
    // Redis's caller's clock for the hold: notBefore was set on the accepting receiver's.
    const [wait, detail] = await this.#run('take', ref.key, { jobId: jobIdOf(ref), value: ref.createdAt, notBefore: ref.notBefore }) as [string, string?]
    if (wait === 'taken') return { taken: true, newestHandledAt: detail === undefined || detail === '' ? undefined : Number(detail) }
    if (wait === 'held') return { taken: false, wait: 'held', retryInMs: Number(detail) }
    return { taken: false, wait: wait as 'busy' | 'behind' | 'blocked' }
  }

  async release (ref: OrderedEventRef, handledCreatedAt: number | undefined): Promise<void> {
    const [next] = await this.#run('release', ref.key, { jobId: jobIdOf(ref), value: handledCreatedAt ?? '' })
    await this.#wake(next)
  }

  async block (ref: OrderedEventRef, _now: number): Promise<void> {
    await this.#run('block', ref.key, { jobId: jobIdOf(ref), eventId: ref.id })
  }

  async unblock (key: string): Promise<boolean> {
    const [was, next] = await this.#run('unblock', key)
    if (was !== 'yes') return false
    await this.#wake(next)
    return true
  }

  async blocked (): Promise<BlockedKey[]> {
    const queue = await this.#queue()
    const entries = await (await queue.client).hgetall(queue.toKey('sir-order:blocked'))
    return await Promise.all(Object.entries(entries).map(async ([key, value]) => {
      const { jobId, eventId, since } = JSON.parse(value) as { jobId: string, eventId: string, since: number }
      // Blocked by a job BullMQ failed on its own (stalled too often): the id is in the job.
      const id = eventId !== '' ? eventId : jobEventId(await queue.getJob(jobId)) ?? jobId
      return { key, eventId: id, since: new Date(since) }
    }))
  }

  counts (): OrderingKeyCounts {
    return this.#counts
  }

  /** After a job was parked: if its key freed meanwhile (the release found it still running), wake the head now. */
  async wakeHead (key: string): Promise<void> {
    const [next] = await this.#run('next', key)
    await this.#wake(next)
  }

  async #wake (jobId: unknown): Promise<void> {
    if (typeof jobId !== 'string' || jobId === '') return
    // Not delayed (waiting already, or running): nothing to wake.
    await (await (await this.#queue()).getJob(jobId))?.promote().catch(() => {})
  }

  async refresh (): Promise<void> {
    await this.#run('counts', '')
  }

  start (): void {
    if (this.#timer !== undefined) return
    void this.refresh().catch(this.#settings.onError)
    this.#timer = setInterval(() => { this.refresh().catch(this.#settings.onError) }, COUNTS_REFRESH_MS)
    this.#timer.unref()
  }

  close (): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
  }
}

function jobIdOf (ref: OrderedEventRef): string {
  return (ref as Partial<BullmqOrderedRef>).jobId ?? ref.id
}

function jobEventId (job: { data: JobData } | undefined): string | undefined {
  return job === undefined ? undefined : jobEvent(job.data)?.id
}
