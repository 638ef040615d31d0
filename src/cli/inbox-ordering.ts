import { resolveOptions } from '../core/options.js'
import type { BlockedKey, OrderingKeyCounts, OrderingStore } from '../core/ordering/store.js'
import { EXIT_FAILED, EXIT_OK, type Io } from './args.js'
import type { Show } from './inbox-format.js'
import type { OperatorInbox } from './inbox-stores.js'
import { printable } from './printable.js'
import { table } from './table.js'

const NO_ORDERING = 'this store keeps no ordering state (its inbox offers no orderingStore()), so no key is ever blocked there; nothing was changed'

/**
 * The store's ordering state, as a receiver with the `ordering` option would
 * ask for it. The options matter only for how the store runs events, which an
 * operator's command never does: the key function here is never called.
 */
function orderingStoreOf (inbox: OperatorInbox): OrderingStore | undefined {
  if (typeof inbox.orderingStore !== 'function') return undefined
  return inbox.orderingStore(resolveOptions({ secret: 'whsec_operator_command_verifies_nothing', ordering: { key: () => undefined } }))
}

/** `inbox blocked`: each key blocked behind a dead letter, with the event that holds it. */
export async function runBlocked (inbox: OperatorInbox, io: Io, show: Show): Promise<number> {
  const store = orderingStoreOf(inbox)
  if (store === undefined) {
    io.stderr.write(`sir-webhooks inbox blocked: ${NO_ORDERING}\n`)
    return EXIT_FAILED
  }
  const blocked: BlockedKey[] = await store.blocked()
  show(blocked, () => blocked.length === 0
    ? 'no ordering key is blocked\n'
    : table(['KEY', 'HELD BY EVENT', 'BLOCKED SINCE'], blocked.map((entry) => [printable(entry.key), printable(entry.eventId), entry.since.toISOString()])) +
      'redrive the event to run it in its place, or unblock the key to move on without it: sir-webhooks inbox unblock KEY\n')
  return EXIT_OK
}

/** `inbox unblock KEY`: the key moves on past its dead letter; every receiver on the store runs its next event. */
export async function runUnblock (inbox: OperatorInbox, key: string, io: Io, show: Show): Promise<number> {
  const store = orderingStoreOf(inbox)
  if (store === undefined) {
    io.stderr.write(`sir-webhooks inbox unblock: ${NO_ORDERING}\n`)
    return EXIT_FAILED
  }
  const unblocked = await store.unblock(key)
  show({ key, unblocked }, () => unblocked ? `unblocked ${printable(key)}: its next event runs; the dead letter stays, to re-drive or purge\n` : '')
  if (!unblocked) io.stderr.write(`sir-webhooks inbox unblock: the key "${printable(key)}" is not blocked\n`)
  return unblocked ? EXIT_OK : EXIT_FAILED
}

/** For `inbox stats`: keys waiting and blocked, where the store keeps ordering state; undefined otherwise. */
export function orderingCounts (inbox: OperatorInbox): OrderingKeyCounts | undefined {
  return orderingStoreOf(inbox)?.counts()
}
