import { schemaName } from '../postgres/options.js'
import { EXIT_FAILED, EXIT_OK, UsageError, numberFlag, stringFlag, type Command, type Flags, type Io } from './args.js'
import { deadTable, describeOutcome, moreDeadLetters, presenter } from './inbox-format.js'
import { checkPurgeConsent, purgeBefore, runPurge } from './inbox-purge.js'
import { FILTER_FLAGS, replayFilterFrom, runFilteredRedrive, wantsFilter } from './inbox-replay.js'
import { describeSignals, flowSignals, runPause } from './inbox-flow.js'
import { orderingCounts, runBlocked, runUnblock } from './inbox-ordering.js'
import type { ReplayFilter } from '../core/replay-filter.js'
import { openStore, type OperatorInbox } from './inbox-stores.js'
import { inboxHelp, inboxUsage } from './inbox-usage.js'
import { printable } from './printable.js'
import { storeFailure } from './store-failure.js'
import { table } from './table.js'

/** What to do, checked before the store is opened: a usage error should not wait on a connection. */
interface Request {
  subcommand: 'stats' | 'dead' | 'show' | 'redrive' | 'purge' | 'pause' | 'resume' | 'blocked' | 'unblock'
  id?: string
  /** `unblock KEY`. */
  key?: string
  /** `redrive --state …`: a redrive by filter. */
  filter?: ReplayFilter
  /** `pause|resume --handler NAME`. */
  handler?: string
  limit?: number
  before?: Date
}

function needId (positionals: readonly string[], subcommand: string): string {
  const id = positionals[1]
  if (id === undefined || id.length === 0) throw new UsageError(`inbox ${subcommand} needs an event id: sir-webhooks inbox ${subcommand} ID`)
  if (positionals.length > 2) throw new UsageError(`inbox ${subcommand} takes one event id, got ${positionals.length - 1}`)
  return id
}

/** `--schema`, checked as the Postgres inbox checks it, but as a usage error (exit 2) before anything connects. */
function checkSchema (flags: Flags): void {
  const schema = stringFlag(flags, 'schema')
  if (schema === undefined) return
  try {
    schemaName(schema)
  } catch {
    throw new UsageError(`--schema must be a lower-case SQL name of at most 50 characters (letters, digits, _), such as sir_webhooks; got "${printable(schema)}"`)
  }
}

function parseRequest (flags: Flags, positionals: readonly string[], io: Io): Request {
  const subcommand = positionals[0]
  if (subcommand === undefined) throw new UsageError('which subcommand? stats, dead, show ID, redrive ID|--all|--state …, purge --before DATE, pause, resume, blocked or unblock KEY')
  const only = (flag: string, ...where: string[]): void => {
    const which = where.length === 1 ? where.join('') : `${where.slice(0, -1).join(', ')} and ${where.at(-1) ?? ''}`
    if (flags[flag] !== undefined && !where.includes(subcommand)) throw new UsageError(`--${flag} is for inbox ${which} only`)
  }
  only('before', 'purge')
  for (const flag of ['dry-run', 'yes']) only(flag, 'purge', 'redrive')
  only('limit', 'dead')
  only('all', 'redrive')
  for (const flag of FILTER_FLAGS) if (flag !== 'handler') only(flag, 'redrive')
  only('handler', 'redrive', 'pause', 'resume')
  checkSchema(flags)
  switch (subcommand) {
    case 'stats':
    case 'dead':
    case 'purge':
      if (positionals.length > 1) throw new UsageError(`inbox ${subcommand} takes no event id`)
      if (subcommand === 'purge') {
        const before = purgeBefore(flags)
        checkPurgeConsent(flags, io)
        return { subcommand, before }
      }
      return { subcommand, limit: numberFlag(flags, 'limit', { min: 1, integer: true }) ?? 100 }
    case 'show':
      return { subcommand, id: needId(positionals, subcommand) }
    case 'blocked':
      if (positionals.length > 1) throw new UsageError('inbox blocked takes no argument')
      return { subcommand }
    case 'unblock': {
      const key = positionals[1]
      if (key === undefined || key.length === 0 || positionals.length > 2) throw new UsageError('inbox unblock takes one ordering key: sir-webhooks inbox unblock KEY')
      return { subcommand, key }
    }
    case 'redrive':
      if (wantsFilter(flags)) {
        if (positionals.length > 1 || flags.all === true) throw new UsageError('inbox redrive takes an event id, --all, or a filter (--state …), one of them')
        return { subcommand, filter: replayFilterFrom(flags) }
      }
      if (flags.all === true) {
        if (positionals.length > 1) throw new UsageError('inbox redrive takes an event id or --all, not both')
        // Every dead letter: counted first and confirmed like any redrive by filter.
        return { subcommand, filter: { state: 'dead' } }
      }
      if (flags['dry-run'] !== undefined || flags.yes !== undefined) throw new UsageError('--dry-run and --yes are for a redrive of many (--all, or a filter: --state dead|done …)')
      return { subcommand, id: needId(positionals, subcommand) }
    case 'pause':
    case 'resume': {
      if (positionals.length > 1) throw new UsageError(`inbox ${subcommand} takes no event id; name one handler with --handler NAME`)
      const handler = stringFlag(flags, 'handler')
      if (handler === '') throw new UsageError('--handler must not be empty')
      return handler === undefined ? { subcommand } : { subcommand, handler }
    }
    default:
      throw new UsageError(`unknown subcommand "${printable(subcommand)}": use stats, dead, show, redrive, purge, pause, resume, blocked or unblock`)
  }
}

async function run (request: Request, inbox: OperatorInbox, flags: Flags, io: Io): Promise<number> {
  const show = presenter(flags, io)
  switch (request.subcommand) {
    case 'stats': {
      const counts = await inbox.counts()
      const signals = await flowSignals(inbox)
      // Left out where the store keeps no ordering state.
      const keys = orderingCounts(inbox)
      const ordering = keys === undefined ? {} : { ordering: { waitingKeys: keys.waiting, blockedKeys: keys.blocked } }
      // Printed when a key waits or is blocked: a store without ordered events says nothing new.
      const keyLine = keys === undefined || keys.waiting + keys.blocked === 0 ? '' : `ordering keys: ${keys.waiting} waiting, ${keys.blocked} blocked behind a dead letter${keys.blocked > 0 ? ' (inbox blocked lists them)' : ''}\n`
      // oldestWaitingMs: null when none waits, left out when the store cannot tell.
      show({ ...counts, ...signals, paused: signals.paused ?? null, ...ordering },
        () => table(['STATE', 'EVENTS'], Object.entries(counts).map(([state, count]) => [state, String(count)])) + describeSignals(signals) + keyLine)
      return EXIT_OK
    }
    case 'dead': {
      const limit = request.limit ?? 100
      // One more than asked for: whether there are more, without a count on every call.
      const page = await inbox.deadLetters({ limit: limit + 1 })
      const dead = page.slice(0, limit)
      const more = page.length > limit ? moreDeadLetters(limit, (await inbox.counts()).dead) : ''
      show(dead.map(({ event: _event, body: _body, ...record }) => record), () => dead.length === 0 ? 'no dead letters\n' : deadTable(dead) + more)
      return EXIT_OK
    }
    case 'show': {
      const id = request.id ?? ''
      const outcome = await inbox.outcome(id)
      if (outcome === undefined) {
        io.stderr.write(`sir-webhooks inbox show: no event with id "${printable(id)}" in this store\n`)
        return EXIT_FAILED
      }
      show(outcome, () => describeOutcome(outcome))
      return EXIT_OK
    }
    case 'pause':
    case 'resume':
      return await runPause(inbox, request.subcommand === 'pause', request.handler, io, show)
    case 'redrive': {
      if (request.filter !== undefined) return await runFilteredRedrive(inbox, request.filter, flags, io, show)
      const id = request.id ?? ''
      const redriven = await inbox.redrive(id)
      show({ id, redriven }, () => redriven ? `re-drove ${printable(id)}: queued again, attempts reset\n` : '')
      if (!redriven) io.stderr.write(`sir-webhooks inbox redrive: no dead event with id "${printable(id)}"\n`)
      return redriven ? EXIT_OK : EXIT_FAILED
    }
    case 'blocked':
      return await runBlocked(inbox, io, show)
    case 'unblock':
      return await runUnblock(inbox, request.key ?? '', io, show)
    case 'purge':
      return await runPurge(inbox, request.before ?? new Date(0), flags, io, show)
  }
}

export const inboxCommand: Command = {
  name: 'inbox',
  summary: 'see and re-drive a durable inbox: stats, dead letters, show, redrive (by id or filter), purge, pause, resume, blocked, unblock',
  usage: inboxUsage,
  help: inboxHelp,
  positionals: true,
  options: {
    store: { type: 'string' },
    queue: { type: 'string' },
    prefix: { type: 'string' },
    schema: { type: 'string' },
    limit: { type: 'string' },
    before: { type: 'string' },
    'dry-run': { type: 'boolean' },
    yes: { type: 'boolean', short: 'y' },
    all: { type: 'boolean' },
    state: { type: 'string' },
    type: { type: 'string' },
    since: { type: 'string' },
    until: { type: 'string' },
    handler: { type: 'string' },
    json: { type: 'boolean' }
  },
  async run (flags, io, positionals) {
    const request = parseRequest(flags, positionals, io)
    const spec = stringFlag(flags, 'store') ?? io.env.SIR_WEBHOOKS_STORE
    try {
      const inbox = await openStore(flags, io)
      try {
        return await run(request, inbox, flags, io)
      } finally {
        await inbox.close(0)
      }
    } catch (error) {
      throw storeFailure(error, spec, flags)
    }
  }
}
