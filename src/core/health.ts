import type { Inbox } from './inbox.js'
import type { PauseState } from './flow/store.js'

/** What `webhooks.health()` returns: for a readiness probe or `@fastify/under-pressure`. */
export interface WebhookHealth {
  /**
   * `ok`: taking deliveries. `degraded`: taking them, but the queue is above
   * `degradedQueueSize`, or the inbox is starting or its store is failing.
   * `paused`: taking deliveries, but `pause()` holds back some or all handlers
   * (not a failure: a readiness probe should treat it as ready), or an
   * ordering key is blocked behind a dead letter (`ordering.onDeadLetter: 'block'`).
   * `closing`: `close()` was called; deliveries get 503.
   */
  status: 'ok' | 'degraded' | 'paused' | 'closing'
  /** Why it is not ok, one sentence each; empty when ok. */
  reasons: string[]
}

export interface HealthInputs {
  closing: boolean
  /** The inbox's asynchronous start: still running, failed, or done (or there was none). */
  start: 'starting' | 'failed' | 'done'
  inbox: Inbox
  degradedQueueSize: number
  /** What `pause()` holds back, where the inbox has flow control. */
  paused?: PauseState | undefined
  /** Ordering keys blocked behind a dead letter, where the receiver has the `ordering` option. */
  blockedKeys?: number | undefined
}

/** Judges a receiver's health from what it knows now; synchronous, cheap enough to poll every second. */
export function judgeHealth ({ closing, start, inbox, degradedQueueSize, paused, blockedKeys }: HealthInputs): WebhookHealth {
  if (closing) return { status: 'closing', reasons: ['the receiver is closing: deliveries are answered 503'] }
  const reasons: string[] = []
  if (start === 'starting') reasons.push('the inbox is starting: deliveries wait for it')
  if (start === 'failed') reasons.push('the inbox failed to start: deliveries are answered 503')
  const size = inbox.size
  if (size !== undefined && size >= degradedQueueSize) {
    reasons.push(`the queue holds ${size} events accepted and not finished, at or above degradedQueueSize (${degradedQueueSize})`)
  }
  if (typeof inbox.health === 'function') {
    try {
      const own = inbox.health()
      if (own.status !== 'ok') reasons.push(...(own.reasons.length > 0 ? own.reasons : ['the inbox reports itself degraded']))
    } catch (error) {
      reasons.push(`the inbox's health check threw: ${error instanceof Error ? error.message : String(error)}`)
    }
  }
  const pauses = paused === undefined ? [] : pauseReasons(paused)
  // Like a pause, a blocked key holds back runs, not deliveries: not a reason to shed load.
  if (blockedKeys !== undefined && blockedKeys > 0) {
    pauses.push(`${blockedKeys} ordering key${blockedKeys === 1 ? ' is' : 's are'} blocked behind a dead letter (ordering.onDeadLetter "block"): ` +
      'webhooks.ordering.blocked() lists them, unblock(key) moves one on')
  }
  // Degraded wins: a paused receiver whose store is failing needs an operator for the store.
  if (reasons.length > 0) return { status: 'degraded', reasons: [...reasons, ...pauses] }
  return pauses.length > 0 ? { status: 'paused', reasons: pauses } : { status: 'ok', reasons }
}

function pauseReasons ({ all, handlers }: PauseState): string[] {
  if (all) return ['every handler is paused (pause()): deliveries are stored and answered, nothing runs until resume()']
  return [...handlers].map((name) => `handler "${name}" is paused: its runs wait until resume(${JSON.stringify(name)})`)
}
