import type { MeterLike } from '../telemetry-types.js'
import type { OrderingKeyCounts } from './store.js'

/**
 * Ordering's metrics: the keys waiting and blocked (a gauge read from the store's
 * counts), and the stale events (a counter, `handled` when the handler was told,
 * `skipped` under `skipStale`). Attributes are two fixed values each, never a key.
 */
export function orderingInstruments (meter: MeterLike | undefined, counts: () => OrderingKeyCounts): ((skipped: boolean) => void) | undefined {
  if (meter === undefined) return undefined
  meter.createObservableGauge('sir_webhooks.ordering.keys', { description: 'Ordering keys with an event waiting for its turn, and keys blocked behind a dead letter', unit: '{key}' })
    .addCallback((result) => {
      const { waiting, blocked } = counts()
      result.observe(waiting, { 'sir_webhooks.state': 'waiting' })
      result.observe(blocked, { 'sir_webhooks.state': 'blocked' })
    })
  const stale = meter.createCounter('sir_webhooks.ordering.stale', { description: 'Ordered events that ran after a newer event of their key was handled, by what was done', unit: '{event}' })
  const handled = { 'sir_webhooks.outcome': 'handled' }
  const skipped = { 'sir_webhooks.outcome': 'skipped' }
  return (wasSkipped) => { stale.add(1, wasSkipped ? skipped : handled) }
}
