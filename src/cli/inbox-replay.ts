import type { ReplayFilter } from '../core/replay-filter.js'
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, stringFlag, type Flags, type Io } from './args.js'
import type { Show } from './inbox-format.js'
import { confirm, dateFlag } from './inbox-purge.js'
import type { OperatorInbox } from './inbox-stores.js'
import { printable } from './printable.js'

/** The flags that make `inbox redrive` a redrive by filter. */
export const FILTER_FLAGS = ['state', 'type', 'since', 'until', 'handler'] as const

export function wantsFilter (flags: Flags): boolean {
  return FILTER_FLAGS.some((flag) => flags[flag] !== undefined)
}

function nonEmpty (flags: Flags, name: string): string | undefined {
  const value = stringFlag(flags, name)
  if (value === '') throw new UsageError(`--${name} must not be empty`)
  return value
}

/** The filter, checked before the store is opened: a usage error should not wait on a connection. */
export function replayFilterFrom (flags: Flags): ReplayFilter {
  const state = stringFlag(flags, 'state')
  if (state === undefined) throw new UsageError('inbox redrive by filter needs --state dead (re-drive dead letters) or --state done (replay finished events after a handler fix)')
  if (state !== 'dead' && state !== 'done') throw new UsageError(`--state must be dead or done, got "${printable(state)}"`)
  const filter: ReplayFilter = { state }
  const type = nonEmpty(flags, 'type')
  const handler = nonEmpty(flags, 'handler')
  const since = dateFlag(flags, 'since')
  const until = dateFlag(flags, 'until')
  if (since !== undefined && until !== undefined && since.getTime() >= until.getTime()) {
    throw new UsageError(`--since (${since.toISOString()}) must be before --until (${until.toISOString()}): no event can match`)
  }
  if (type !== undefined) filter.type = type
  if (handler !== undefined) filter.handler = handler
  if (since !== undefined) filter.since = since
  if (until !== undefined) filter.until = until
  return filter
}

/** "3 dead event(s) of type action.completed received since …", every value made printable. */
function described (filter: ReplayFilter, count: number): string {
  let text = `${count} ${filter.state} event(s)`
  if (filter.type !== undefined) text += ` of type ${printable(filter.type)}`
  if (filter.since !== undefined) text += ` received since ${filter.since.toISOString()}`
  if (filter.until !== undefined) text += `${filter.since === undefined ? ' received' : ','} before ${filter.until.toISOString()}`
  if (filter.handler !== undefined) text += filter.state === 'dead' ? ` that ${printable(filter.handler)} did not handle` : ` (handler ${printable(filter.handler)} only)`
  return text
}

/** What the re-queued events do next, said once they are queued. */
function consequence (filter: ReplayFilter): string {
  if (filter.state === 'dead') return 'attempts reset; handlers that had succeeded do not run again'
  return filter.handler === undefined ? 'every handler of each runs again' : `only ${printable(filter.handler)} runs again`
}

/**
 * `inbox redrive --state … [filters]`: counts first; a dry run stops there.
 * More than one event needs --yes, or a yes in a terminal: a replay of done
 * events runs handlers again, and a broad filter is easy to type.
 */
export async function runFilteredRedrive (inbox: OperatorInbox, filter: ReplayFilter, flags: Flags, io: Io, show: Show): Promise<number> {
  if (inbox.countMatching === undefined || inbox.requeue === undefined) {
    io.stderr.write('sir-webhooks inbox redrive: this store cannot re-drive by filter; redrive ID and --all still work\n')
    return EXIT_FAILED
  }
  const verb = filter.state === 'dead' ? 're-drive' : 'replay'
  const matched = await inbox.countMatching(filter)
  const json = { ...filter, matched }
  if (flags['dry-run'] === true) {
    show({ ...json, dryRun: true }, () => `would ${verb} ${described(filter, matched)}; touched nothing (dry run)\n`)
    return EXIT_OK
  }
  if (matched === 0) {
    show({ ...json, requeued: 0 }, () => `no ${described(filter, 0).slice(2)} to ${verb}; nothing was queued\n`)
    return EXIT_OK
  }
  if (matched > 1 && flags.yes !== true) {
    if (io.stdin.isTTY !== true) {
      io.stderr.write(`sir-webhooks inbox redrive: this would ${verb} ${described(filter, matched)}: add --yes to go ahead, or --dry-run to only count; nothing was queued\n`)
      return EXIT_USAGE
    }
    if (!await confirm(io, `${verb} ${described(filter, matched)}? [y/N] `)) {
      io.stderr.write('sir-webhooks inbox redrive: not confirmed; nothing was queued\n')
      return EXIT_FAILED
    }
  }
  // At most what was counted and confirmed: events matching only since are left alone.
  const requeued = await inbox.requeue(filter, { max: matched })
  show({ ...json, requeued }, () => `${verb === 're-drive' ? 're-drove' : 'replayed'} ${described(filter, requeued)}: queued again, ${consequence(filter)}\n`)
  return EXIT_OK
}
