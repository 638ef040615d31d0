import { createInterface } from 'node:readline'
import type { PurgeResult } from '../core/inbox.js'
import { EXIT_FAILED, EXIT_OK, UsageError, stringFlag, type Flags, type Io } from './args.js'
import type { OperatorInbox } from './inbox-stores.js'
import type { Show } from './inbox-format.js'
import { printable } from './printable.js'

// A date, or a date and time with Z or an offset. Not `new Date(raw)`: that reads
// "0" as 2000-01-01, "2026-02-30" as March 2, and a time with no zone in the
// local one, each a different set of deleted events than the operator meant.
const ISO_8601 = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?([Zz]|[+-](\d{2}):(\d{2})))?$/

const EXAMPLES = 'such as 2026-10-01 (midnight UTC) or 2026-10-01T12:00:00Z'

function validParts (match: RegExpExecArray): boolean {
  const part = (index: number): number => Number(match[index] ?? 0)
  const date = new Date(Date.UTC(part(1), part(2) - 1, part(3)))
  return date.getUTCMonth() === part(2) - 1 && date.getUTCDate() === part(3) &&
    part(4) <= 23 && part(5) <= 59 && part(6) <= 59 && part(8) <= 23 && part(9) <= 59
}

/** A date flag (`--before`, `--since`, `--until`): ISO 8601, read exactly; undefined when not given. */
export function dateFlag (flags: Flags, name: string): Date | undefined {
  const raw = stringFlag(flags, name)
  if (raw === undefined) return undefined
  const match = ISO_8601.exec(raw)
  if (match === null) {
    throw new UsageError(`--${name} must be an ISO 8601 date, ${EXAMPLES}; a time needs Z or an offset; got "${printable(raw)}"`)
  }
  const date = new Date(raw.toUpperCase())
  if (!validParts(match) || Number.isNaN(date.getTime())) throw new UsageError(`--${name} is not a calendar date and time, got "${printable(raw)}"`)
  return date
}

/** `--before`: required, ISO 8601, not in the future (purging up to now already takes every finished event). */
export function purgeBefore (flags: Flags, now = Date.now()): Date {
  const before = dateFlag(flags, 'before')
  if (before === undefined) throw new UsageError(`inbox purge needs --before DATE (ISO 8601, ${EXAMPLES})`)
  if (before.getTime() > now) {
    throw new UsageError(`--before must not be in the future, got ${before.toISOString()}: events finish in the past, so a date from now on would purge every finished event`)
  }
  return before
}

/**
 * Checked before the store is opened: outside a terminal, a purge without
 * --yes or --dry-run is refused, so a script cannot delete by accident.
 */
export function checkPurgeConsent (flags: Flags, io: Io): void {
  if (flags['dry-run'] === true || flags.yes === true || io.stdin.isTTY === true) return
  throw new UsageError('inbox purge deletes events: add --yes to confirm (no terminal to ask in), or --dry-run to count them; nothing was deleted')
}

export async function confirm (io: Io, question: string): Promise<boolean> {
  io.stderr.write(question)
  const lines = createInterface({ input: io.stdin, terminal: false })
  try {
    for await (const line of lines) return /^y(es)?$/i.test(line.trim())
    return false
  } finally {
    lines.close()
  }
}

function count (purged: PurgeResult): string {
  return `${purged.done} done and ${purged.dead} dead event(s)`
}

export async function runPurge (inbox: OperatorInbox, before: Date, flags: Flags, io: Io, show: Show): Promise<number> {
  const when = before.toISOString()
  const yes = flags.yes === true
  if (flags['dry-run'] === true || !yes) {
    const found = await inbox.purge({ before, dryRun: true })
    if (flags['dry-run'] === true) {
      show({ before, dryRun: true, ...found }, () => `would purge ${count(found)} that finished before ${when}; deleted nothing (dry run)\n`)
      return EXIT_OK
    }
    // Only a terminal gets here without --yes (checkPurgeConsent).
    if (found.done + found.dead > 0) {
      const asked = `delete ${count(found)} that finished before ${when}? Their ids are forgotten for dedupe (on BullMQ once their dedupe keys expire too), so a late redelivery runs again. [y/N] `
      if (!await confirm(io, asked)) {
        io.stderr.write('sir-webhooks inbox purge: not confirmed; nothing was deleted\n')
        return EXIT_FAILED
      }
    }
  }
  const purged = await inbox.purge({ before })
  show({ before, ...purged }, () => `purged ${count(purged)} that finished before ${when}\n`)
  return EXIT_OK
}
