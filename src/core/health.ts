import type { Inbox } from './inbox.js'

/** What `webhooks.health()` returns: for a readiness probe or `@fastify/under-pressure`. */
export interface WebhookHealth {
  /**
   * `ok`: taking deliveries. `degraded`: taking them, but the queue is above
   * `degradedQueueSize`, or the inbox is starting or its store is failing.
   * `closing`: `close()` was called; deliveries get 503.
   */
  status: 'ok' | 'degraded' | 'closing'
  /** Why it is not ok, one sentence each; empty when ok. */
  reasons: string[]
}

export interface HealthInputs {
  closing: boolean
  /** The inbox's asynchronous start: still running, failed, or done (or there was none). */
  start: 'starting' | 'failed' | 'done'
  inbox: Inbox
  degradedQueueSize: number
}

/** Judges a receiver's health from what it knows now; synchronous, cheap enough to poll every second. */
export function judgeHealth ({ closing, start, inbox, degradedQueueSize }: HealthInputs): WebhookHealth {
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
  return { status: reasons.length === 0 ? 'ok' : 'degraded', reasons }
}
