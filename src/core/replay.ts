import { keyedHandlers } from './attempt.js'
import { WebhookOptionsError } from './errors.js'
import type { AnyEvent } from './events.js'
import type { HandlerRun, InboxRuntime } from './inbox.js'
import { errorSummary } from './outcome.js'
import type { CheckedReplayFilter } from './replay-filter.js'

/** `webhooks.replay(filter, options)`. */
export interface ReplayOptions {
  /**
   * Run the current handlers on the stored events that match, and record
   * nothing: the events keep their state. On Postgres each run is in a
   * transaction that is rolled back; elsewhere a handler's outside effects
   * happen unless it checks `context.replay?.dryRun` and skips them.
   */
  dryRun?: boolean
  /** A dry run replays at most this many events, the oldest first (received on SQLite and Postgres, finished on BullMQ). Default 100, at most 10 000. */
  limit?: number
}

/** One handler's run in a dry-run replay. */
export interface ReplayRun {
  /** The event's id. */
  id: string
  /** The handler's key: its name, with `#2`… for a second handler of the same name. */
  handler: string
  outcome: 'succeeded' | 'failed'
  /** `errorSummary()` of what it threw: never the event body. */
  error?: string
}

export const DEFAULT_DRY_RUN_LIMIT = 100
const MAX_DRY_RUN_LIMIT = 10_000

export function checkReplayOptions (options: ReplayOptions | undefined): { dryRun: boolean, limit: number } {
  if (options !== undefined && (typeof options !== 'object' || options === null)) throw new WebhookOptionsError('replay(filter, options): "options" must be an object such as { dryRun: true }')
  const { dryRun = false, limit = DEFAULT_DRY_RUN_LIMIT } = options ?? {}
  if (typeof dryRun !== 'boolean') throw new WebhookOptionsError('replay(filter, options): "dryRun" must be true or false')
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_DRY_RUN_LIMIT) {
    throw new WebhookOptionsError(`replay(filter, options): "limit" must be an integer from 1 to ${MAX_DRY_RUN_LIMIT}, got ${JSON.stringify(limit)}`)
  }
  return { dryRun, limit }
}

/** One stored event as a dry run needs it. */
export interface StoredEvent {
  event: AnyEvent
  receivedAt: number
  /** Keys of the handlers the store has marked as handled. */
  succeeded: readonly string[]
}

/**
 * Runs, once each and one after another, the handlers a replay of this event
 * with this filter would run: for a dead event those not yet handled, for a
 * done one all of them; only `filter.handler` when given. Nothing is counted
 * or recorded; the flow gate is not asked (an operator's explicit check is no
 * delivery to pace). `around` wraps each run, such as in a transaction that is
 * rolled back, and is given the run's extra context.
 */
export async function dryRunEvent<Extra extends object> (
  runtime: InboxRuntime<Extra>,
  stored: StoredEvent,
  filter: CheckedReplayFilter,
  around: (run: (extra?: Extra) => Promise<void>) => Promise<void> = async (run) => { await run() }
): Promise<ReplayRun[]> {
  const { event, receivedAt } = stored
  const skip = new Set(filter.state === 'dead' ? stored.succeeded : [])
  const keyed = keyedHandlers(runtime.handlersFor(event.type))
    .filter(({ key }) => !skip.has(key) && (filter.handler === undefined || key === filter.handler))
  const runs: ReplayRun[] = []
  for (const { handler, key } of keyed) {
    const run: HandlerRun = { event, handler, attempt: 1, receivedAt, replay: { dryRun: true } }
    try {
      await around(async (extra) => { await runtime.runHandler(run, extra) })
      runs.push({ id: event.id, handler: key, outcome: 'succeeded' })
    } catch (error) {
      runs.push({ id: event.id, handler: key, outcome: 'failed', error: errorSummary(error) })
    }
  }
  return runs
}
