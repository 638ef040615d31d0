/**
 * The share of Redis's `maxmemory` past which accepts answer `full`. The rest
 * is for what the events already taken still write (their workers' locks, the
 * done records kept for `retentionSeconds`, the flow-control keys): with BullMQ's
 * required `noeviction` policy, a Redis at its limit refuses those writes too,
 * and the handlers could not finish the backlog that filled it.
 */
export const MEMORY_SHARE = 0.9
/** How often `INFO` is read: one command a second, whatever the traffic. */
export const MEMORY_CHECK_MS = 1_000

export interface MemoryReading {
  used: number
  /** 0: no limit. */
  max: number
  /** `maxmemory-policy`; empty where INFO does not say (old servers). */
  policy: string
}

/** `used_memory`, `maxmemory` and `maxmemory_policy` from an `INFO` answer (its memory section). */
export function parseMemoryInfo (info: string): MemoryReading | undefined {
  const field = (name: string): string | undefined => new RegExp(`^${name}:(\\S+)\\s*$`, 'm').exec(info)?.[1]
  const used = Number(field('used_memory'))
  const max = Number(field('maxmemory'))
  return Number.isSafeInteger(used) && Number.isSafeInteger(max) ? { used, max, policy: field('maxmemory_policy') ?? '' } : undefined
}

/**
 * Redis memory as the BullMQ inbox's backlog bound sees it: read on a timer,
 * full past `MEMORY_SHARE` of `maxmemory` when one is set. Without a
 * `maxmemory` Redis has no limit of its own to keep under, and the count bound
 * (`maxBacklog`) is the only one. Nor under an `allkeys-*` policy: such a Redis
 * (a cache, which BullMQ warns it must not be) sits at its limit by design and
 * evicts rather than refuses, so a floor would refuse every delivery. A failed
 * read keeps the last reading: the accepts' own commands say whether Redis is reachable.
 */
export class RedisMemory {
  readonly #info: () => Promise<string>
  #reading: MemoryReading | undefined
  #timer: NodeJS.Timeout | undefined

  constructor (info: () => Promise<string>) {
    this.#info = info
  }

  get full (): boolean {
    const reading = this.#reading
    return reading !== undefined && reading.max > 0 && !reading.policy.startsWith('allkeys-') && reading.used >= reading.max * MEMORY_SHARE
  }

  /** Why accepts are refused, for health(); undefined when they are not. */
  reason (): string | undefined {
    const reading = this.#reading
    if (reading === undefined || !this.full) return undefined
    const mib = (bytes: number): string => `${Math.round(bytes / 1_048_576)} MiB`
    return `Redis uses ${mib(reading.used)} of its maxmemory ${mib(reading.max)} (past ${MEMORY_SHARE * 100}%): deliveries get 503 while the handlers drain the queue`
  }

  async check (): Promise<boolean> {
    try {
      this.#reading = parseMemoryInfo(await this.#info()) ?? this.#reading
    } catch {
      // Kept: an unreachable Redis fails the accepts themselves, with 503.
    }
    return this.full
  }

  start (): void {
    if (this.#timer !== undefined) return
    void this.check()
    this.#timer = setInterval(() => { void this.check() }, MEMORY_CHECK_MS)
    this.#timer.unref()
  }

  stop (): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }
}
