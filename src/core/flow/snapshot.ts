import type { DeferralCounts, FlowGate } from './gate.js'

/** What `stats().flow` says: per handler, deferrals by reason and whether it is paused; the oldest wait. */
export interface FlowStats {
  /** Handlers that were deferred or are paused, by name. */
  handlers: Record<string, { paused: boolean, deferred: DeferralCounts }>
  /** Whether `pause()` without a name is in effect. */
  pausedAll: boolean
  /** Age of the oldest event accepted and not finished, in ms; undefined when none, or when the inbox cannot tell. */
  oldestWaitingMs: number | undefined
}

export function flowSnapshot (gate: FlowGate | undefined, oldestReceivedAt: number | undefined, now: number): FlowStats {
  const handlers: FlowStats['handlers'] = {}
  const oldestWaitingMs = oldestReceivedAt === undefined ? undefined : Math.max(0, now - oldestReceivedAt)
  if (gate === undefined) return { handlers, pausedAll: false, oldestWaitingMs }
  const { all, handlers: paused } = gate.pauseState()
  for (const [name, deferred] of gate.deferrals()) handlers[name] = { paused: all || paused.has(name), deferred: { ...deferred } }
  for (const name of paused) handlers[name] ??= { paused: true, deferred: { paused: 0, rate: 0, concurrency: 0, retryLater: 0 } }
  return { handlers, pausedAll: all, oldestWaitingMs }
}
