import { createDelivery } from './delivery.js'

/** Delays before the 2nd, 3rd… attempt: 1 s doubling, five retries, as a sender that gives up within a minute. */
export const DEFAULT_RETRY_SCHEDULE_MS: readonly number[] = exponentialSchedule(1000, 5)
export const DEFAULT_TIMEOUT_MS = 10_000

/** `retries` delays, the first `firstDelayMs`, each later one twice the one before. */
export function exponentialSchedule (firstDelayMs: number, retries: number): number[] {
  return Array.from({ length: retries }, (_, index) => firstDelayMs * 2 ** index)
}

export interface AttemptRecord {
  /** 1 for the first try. */
  attempt: number
  /** When the request left, ISO 8601. */
  sentAt: string
  /** The `X-SIR-Timestamp` this attempt was signed with: each attempt is signed afresh. */
  timestamp: string
  /** The HTTP status, or null when no answer came (timeout, refused connection). */
  status: number | null
  /** Why no answer came, or the receiver's refusal code when it gave one. */
  error?: string
  /** The receiver's `Retry-After`, when it sent one. */
  retryAfter?: string
  /** The receiver's answer said it had seen the event already. */
  duplicate?: boolean
  latencyMs: number
}

export type DeliveryOutcome = 'delivered' | 'given_up' | 'cancelled'

export interface AttemptsResult {
  outcome: DeliveryOutcome
  attempts: AttemptRecord[]
}

export interface SenderOptions {
  url: string | URL
  secret: string
  /** Delays in ms before each retry; its length is the number of retries. Default 1 s, 2 s, 4 s, 8 s, 16 s. */
  retrySchedule?: readonly number[]
  /** An attempt with no answer after this long counts as failed, as a slow receiver does at the platform. Default 10 000. */
  timeoutMs?: number
  /** Seconds added to the sender's clock when signing, to play a sender whose clock is off. */
  skewSeconds?: number
  /** Stops waiting and retrying; the delivery ends `cancelled`. */
  signal?: AbortSignal
  /** Called after each attempt, for progress displays. */
  onAttempt?: (attempt: AttemptRecord) => void
}

function sleep (ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve()
    const timer = setTimeout(done, ms)
    function done (): void {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    signal?.addEventListener('abort', done, { once: true })
  })
}

function describeFailure (error: unknown): string {
  if (error instanceof Error) {
    if (error.name === 'TimeoutError') return 'timeout'
    // fetch wraps the reason (ECONNREFUSED, a blocked port) in a generic "fetch failed".
    const cause = (error as { cause?: { code?: unknown, message?: unknown } }).cause
    if (typeof cause?.code === 'string') return cause.code
    if (typeof cause?.message === 'string') return cause.message
    return error.message
  }
  return String(error)
}

function readAnswer (text: string): { error?: string, duplicate?: boolean } {
  try {
    const answer = JSON.parse(text) as { duplicate?: unknown, error?: { code?: unknown } }
    if (answer.duplicate === true) return { duplicate: true }
    if (typeof answer.error?.code === 'string') return { error: answer.error.code }
  } catch {
    // Not this package's receiver, or not JSON: the status says enough.
  }
  return {}
}

async function attemptOnce (body: string, attempt: number, options: SenderOptions): Promise<AttemptRecord> {
  const timestamp = Math.floor(Date.now() / 1000) + (options.skewSeconds ?? 0)
  const { headers } = createDelivery(body, { secret: options.secret, timestamp })
  const sentAt = new Date().toISOString()
  const started = performance.now()
  const timeout = AbortSignal.timeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS)
  const signal = options.signal === undefined ? timeout : AbortSignal.any([timeout, options.signal])
  try {
    const response = await fetch(options.url, { method: 'POST', headers, body, signal })
    const text = await response.text()
    const record: AttemptRecord = { attempt, sentAt, timestamp: headers['X-SIR-Timestamp'], status: response.status, latencyMs: performance.now() - started }
    const retryAfter = response.headers.get('retry-after')
    if (retryAfter !== null) record.retryAfter = retryAfter
    return { ...record, ...readAnswer(text) }
  } catch (error) {
    return { attempt, sentAt, timestamp: headers['X-SIR-Timestamp'], status: null, error: describeFailure(error), latencyMs: performance.now() - started }
  }
}

/**
 * Delivers one event the way the platform's sender does: any answer but a 2xx
 * (or none within the timeout) is a failure, retried after the next delay of
 * the schedule, each attempt signed with a fresh timestamp.
 */
export async function deliverWithRetries (event: object | string, options: SenderOptions): Promise<AttemptsResult> {
  const body = typeof event === 'string' ? event : JSON.stringify(event)
  const schedule = options.retrySchedule ?? DEFAULT_RETRY_SCHEDULE_MS
  const attempts: AttemptRecord[] = []
  for (let attempt = 1; ; attempt++) {
    if (options.signal?.aborted === true) return { outcome: 'cancelled', attempts }
    const record = await attemptOnce(body, attempt, options)
    attempts.push(record)
    options.onAttempt?.(record)
    if (record.status !== null && record.status >= 200 && record.status < 300) return { outcome: 'delivered', attempts }
    const delay = schedule[attempt - 1]
    if (delay === undefined) return { outcome: 'given_up', attempts }
    await sleep(delay, options.signal)
  }
}
