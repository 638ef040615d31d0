import type { EventName, KnownEvent } from '../core/events.js'
import { createEvent } from './event-factory.js'

/** Share of `action.completed` events followed by their action's `action.reversed`, when that type is drawn from. */
export const REVERSED_SHARE = 0.5

/**
 * The simulator's events, `intervalMs` apart in `createdAt` from `start`, types
 * drawn from `types`. Events about one thing share it as the platform's do: a
 * share (`REVERSED_SHARE`) of the actions completed are reversed one to three
 * events later, an `action.reversed` with the same `data.actionId` and a later
 * `createdAt`, so that reordering and duplicates reach the events of one action
 * (what the receiver's `ordering` is for). Each completion credits its own
 * `tokensDistributed`. Only the contract's fields are set; the rest is the
 * event factory's. All of it from `random`, so a seed repeats the plan.
 */
export function planEvents (count: number, types: readonly EventName[], start: number, intervalMs: number, random: () => number): KnownEvent[] {
  const drawn = Array.from({ length: count }, () => types[Math.floor(random() * types.length)] as EventName)
  const reversible = types.includes('action.reversed')
  // Position → the action whose reversal takes that place.
  const reversals = new Map<number, string>()
  return drawn.map((type, index) => {
    const options = { createdAt: new Date(start + index * intervalMs) }
    const reversed = reversals.get(index)
    if (reversed !== undefined) return createEvent('action.reversed', { actionId: reversed }, options) as KnownEvent
    if (type !== 'action.completed') return createEvent(type, undefined, options) as KnownEvent
    const completed = createEvent('action.completed', { tokensDistributed: 10 + Math.floor(random() * 91) }, options)
    if (reversible && random() < REVERSED_SHARE) {
      const at = index + 1 + Math.floor(random() * 3)
      if (at < count && !reversals.has(at)) reversals.set(at, completed.data.actionId)
    }
    return completed as KnownEvent
  })
}
