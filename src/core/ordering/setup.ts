import { WebhookOptionsError } from '../errors.js'
import type { Inbox } from '../inbox.js'
import type { WebhookLogger } from '../logger.js'
import type { ResolvedOptions } from '../resolved-options.js'
import type { Telemetry } from '../telemetry.js'
import { OrderingEngine } from './engine.js'
import type { BlockedKey } from './store.js'
import { orderingInstruments } from './telemetry.js'

/** `webhooks.ordering`: the operator's view of the keys ordering holds. */
export interface OrderingControl {
  /** Keys blocked behind a dead letter (`onDeadLetter: 'block'`), each with the event that holds it. */
  blocked (): Promise<BlockedKey[]>
  /** Moves a blocked key on: its next event runs. False when the key was not blocked. */
  unblock (key: string): Promise<boolean>
}

/**
 * The receiver's ordering engine, or undefined without the option. An inbox
 * without an ordering store refuses the option at construction: ignoring it
 * would run one key's events at once, and nobody would know.
 */
export function createOrdering (options: ResolvedOptions, inbox: Inbox, inboxName: string, logger: WebhookLogger, telemetry: Telemetry | undefined): OrderingEngine | undefined {
  if (options.ordering === undefined || !assertOrderingStore(options, inbox, inboxName)) return undefined
  const store = inbox.orderingStore(options)
  return new OrderingEngine(options.ordering, store, logger, options.clock, orderingInstruments(telemetry?.meter, () => store.counts()))
}

/**
 * Refuses the option on an inbox without an ordering store. The receiver asks
 * before anything else of the inbox (its flow store may start timers).
 */
export function assertOrderingStore (options: ResolvedOptions, inbox: Inbox, inboxName: string): inbox is Inbox & Required<Pick<Inbox, 'orderingStore'>> {
  if (options.ordering === undefined) return false
  if (typeof inbox.orderingStore !== 'function') {
    throw new WebhookOptionsError(`"ordering" needs an inbox that keeps the events of one key in order, and ${inboxName} does not (it offers no orderingStore()); ` +
      'the built-in inboxes do: memory, SQLite, Postgres and BullMQ (docs/ordering.md)')
  }
  return true
}

/** `webhooks.ordering`: refuses every call, naming the option, on a receiver without it. */
export function orderingControl (engine: OrderingEngine | undefined): OrderingControl {
  const off = (method: string): never => {
    throw new WebhookOptionsError(`ordering.${method}(): this receiver has no "ordering" option, so no key is ever blocked`)
  }
  return {
    blocked: async () => engine === undefined ? off('blocked') : await engine.blocked(),
    unblock: async (key: string) => {
      if (engine === undefined) return off('unblock')
      if (typeof key !== 'string' || key === '') throw new WebhookOptionsError(`ordering.unblock(key): the key must be a non-empty string, got ${JSON.stringify(key) ?? typeof key}`)
      return await engine.unblock(key)
    }
  }
}
