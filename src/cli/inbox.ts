import type { EventOutcome } from '../core/outcome.js'
import { EXIT_FAILED, EXIT_OK, UsageError, numberFlag, stringFlag, type Command, type Flags, type Io } from './args.js'
import { openStore, STORE_FORMS, type OperatorInbox } from './inbox-stores.js'
import { oneLine, table } from './table.js'

const usage = `Usage: sir-webhooks inbox <subcommand> --store STORE [--json]

Looks into a durable inbox, and re-drives or purges its events, from any machine
that reaches the store. Receivers may keep running meanwhile.

  inbox stats                  events by state: pending, done, dead
  inbox dead [--limit N]       dead letters, oldest first: id, type, attempts, last error, when
  inbox show ID                one event's record and the event itself
  inbox redrive ID             queue a dead event again, its attempts reset
  inbox redrive --all          every dead event
  inbox purge --before DATE    delete done and dead events that finished before DATE (ISO 8601);
                               pending events are never purged

  --store STORE   ${STORE_FORMS}
                  (or set SIR_WEBHOOKS_STORE, which keeps a password out of shell history)
  --queue NAME    the BullMQ queue (default sir-webhooks)
  --prefix P      BullMQ's key prefix (default bull)
  --schema NAME   the Postgres inbox's schema (default sir_webhooks)
  --limit N       at most N dead letters (default 100)
  --json          one JSON document on stdout, for scripts

Exit codes: 0 done; 1 the store failed, or no such (dead) event; 2 bad command line.`

/** Writes a result: as JSON with --json, else as the text `human` makes. */
type Show = (value: unknown, human: () => string) => void

function presenter (flags: Flags, io: Io): Show {
  if (flags.json === true) return (value) => { io.stdout.write(JSON.stringify(value, null, 2) + '\n') }
  return (_value, human) => { io.stdout.write(human()) }
}

/** What to do, checked before the store is opened: a usage error should not wait on a connection. */
interface Request {
  subcommand: 'stats' | 'dead' | 'show' | 'redrive' | 'purge'
  id?: string
  limit?: number
  before?: Date
}

function deadRows (dead: readonly EventOutcome[]): string[][] {
  return dead.map((outcome) => [outcome.id, outcome.type, String(outcome.attempts), oneLine(outcome.lastError ?? '', 60), outcome.finishedAt?.toISOString() ?? ''])
}

function describeOutcome (outcome: EventOutcome): string {
  const rows: Array<[string, string]> = [
    ['id', outcome.id],
    ['type', outcome.type],
    ['state', outcome.state],
    ['received', outcome.receivedAt.toISOString()],
    ['attempts', String(outcome.attempts)]
  ]
  if (outcome.lastError !== undefined) rows.push(['last error', oneLine(outcome.lastError, 1000)])
  if (outcome.finishedAt !== undefined) rows.push(['finished', outcome.finishedAt.toISOString()])
  const width = Math.max(...rows.map(([label]) => label.length))
  const lines = rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`)
  if (outcome.event !== undefined) lines.push('event:', JSON.stringify(outcome.event, null, 2))
  return lines.join('\n') + '\n'
}

/** Re-drives every dead event, page by page, until a page brings nothing new. */
async function redriveAll (inbox: OperatorInbox): Promise<{ redriven: string[], skipped: string[] }> {
  const seen = new Set<string>()
  const redriven: string[] = []
  const skipped: string[] = []
  for (;;) {
    const page = (await inbox.deadLetters({ limit: 100 })).filter((outcome) => !seen.has(outcome.id))
    if (page.length === 0) return { redriven, skipped }
    for (const { id } of page) {
      seen.add(id)
      // false: re-driven or purged by someone else since the page was read.
      if (await inbox.redrive(id)) redriven.push(id)
      else skipped.push(id)
    }
  }
}

function purgeBefore (flags: Flags): Date {
  const raw = stringFlag(flags, 'before')
  if (raw === undefined) throw new UsageError('inbox purge needs --before DATE (ISO 8601, such as 2026-01-31 or 2026-01-31T12:00:00Z)')
  const before = new Date(raw)
  if (Number.isNaN(before.getTime())) throw new UsageError(`--before must be an ISO 8601 date, got ${JSON.stringify(raw)}`)
  return before
}

function needId (positionals: readonly string[], subcommand: string): string {
  const id = positionals[1]
  if (id === undefined || id.length === 0) throw new UsageError(`inbox ${subcommand} needs an event id: sir-webhooks inbox ${subcommand} ID`)
  if (positionals.length > 2) throw new UsageError(`inbox ${subcommand} takes one event id, got ${positionals.length - 1}`)
  return id
}

function parseRequest (flags: Flags, positionals: readonly string[]): Request {
  const subcommand = positionals[0]
  if (subcommand === undefined) throw new UsageError('which subcommand? stats, dead, show ID, redrive ID|--all or purge --before DATE')
  switch (subcommand) {
    case 'stats':
    case 'dead':
    case 'purge':
      if (positionals.length > 1) throw new UsageError(`inbox ${subcommand} takes no event id`)
      if (subcommand === 'purge') return { subcommand, before: purgeBefore(flags) }
      return { subcommand, limit: numberFlag(flags, 'limit', { min: 1, integer: true }) ?? 100 }
    case 'show':
      return { subcommand, id: needId(positionals, subcommand) }
    case 'redrive':
      if (flags.all !== true) return { subcommand, id: needId(positionals, subcommand) }
      if (positionals.length > 1) throw new UsageError('inbox redrive takes an event id or --all, not both')
      return { subcommand }
    default:
      throw new UsageError(`unknown subcommand ${JSON.stringify(subcommand)}: use stats, dead, show, redrive or purge`)
  }
}

async function run (request: Request, inbox: OperatorInbox, show: Show, io: Io): Promise<number> {
  switch (request.subcommand) {
    case 'stats': {
      const counts = await inbox.counts()
      show(counts, () => table(['STATE', 'EVENTS'], Object.entries(counts).map(([state, count]) => [state, String(count)])))
      return EXIT_OK
    }
    case 'dead': {
      const dead = await inbox.deadLetters({ limit: request.limit ?? 100 })
      show(dead.map(({ event: _event, ...record }) => record), () => dead.length === 0
        ? 'no dead letters\n'
        : table(['ID', 'TYPE', 'ATTEMPTS', 'LAST ERROR', 'DEAD SINCE'], deadRows(dead)))
      return EXIT_OK
    }
    case 'show': {
      const id = request.id ?? ''
      const outcome = await inbox.outcome(id)
      if (outcome === undefined) {
        io.stderr.write(`sir-webhooks inbox show: no event with id ${JSON.stringify(id)} in this store\n`)
        return EXIT_FAILED
      }
      show(outcome, () => describeOutcome(outcome))
      return EXIT_OK
    }
    case 'redrive': {
      if (request.id === undefined) {
        const result = await redriveAll(inbox)
        show(result, () => `re-drove ${result.redriven.length} dead event(s)${result.skipped.length > 0 ? `; ${result.skipped.length} were no longer dead` : ''}\n`)
        return EXIT_OK
      }
      const { id } = request
      const redriven = await inbox.redrive(id)
      show({ id, redriven }, () => redriven ? `re-drove ${id}: queued again, attempts reset\n` : '')
      if (!redriven) io.stderr.write(`sir-webhooks inbox redrive: no dead event with id ${JSON.stringify(id)}\n`)
      return redriven ? EXIT_OK : EXIT_FAILED
    }
    case 'purge': {
      const before = request.before ?? new Date(0)
      const purged = await inbox.purge({ before })
      show({ before, ...purged }, () => `purged ${purged.done} done and ${purged.dead} dead event(s) that finished before ${before.toISOString()}\n`)
      return EXIT_OK
    }
  }
}

export const inboxCommand: Command = {
  name: 'inbox',
  summary: 'see and re-drive a durable inbox: stats, dead letters, show, redrive, purge',
  usage,
  positionals: true,
  options: {
    store: { type: 'string' },
    queue: { type: 'string' },
    prefix: { type: 'string' },
    schema: { type: 'string' },
    limit: { type: 'string' },
    before: { type: 'string' },
    all: { type: 'boolean' },
    json: { type: 'boolean' }
  },
  async run (flags, io, positionals) {
    const request = parseRequest(flags, positionals)
    const inbox = await openStore(flags, io)
    try {
      return await run(request, inbox, presenter(flags, io), io)
    } finally {
      await inbox.close(0)
    }
  }
}
