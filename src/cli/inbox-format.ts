import type { EventOutcome } from '../core/outcome.js'
import type { Flags, Io } from './args.js'
import { printable, printableLines, terminalJson } from './printable.js'
import { oneLine, table } from './table.js'

// The human-readable views of `inbox dead` and `inbox show`. Every value read
// from the store goes through printable(): ids, types and errors are whatever a
// sender or a handler put there.

/** Writes a result: as JSON with --json, else as the text `human` makes. */
export type Show = (value: unknown, human: () => string) => void

export function presenter (flags: Flags, io: Io): Show {
  if (flags.json === true) return (value) => { io.stdout.write(terminalJson(value) + '\n') }
  return (_value, human) => { io.stdout.write(human()) }
}

export function deadTable (dead: readonly EventOutcome[]): string {
  const rows = dead.map((outcome) => [
    printable(outcome.id),
    printable(outcome.type),
    String(outcome.attempts),
    printable(oneLine(outcome.lastError ?? '', 60)),
    outcome.finishedAt?.toISOString() ?? ''
  ])
  return table(['ID', 'TYPE', 'ATTEMPTS', 'LAST ERROR', 'DEAD SINCE'], rows)
}

/** The line under a dead-letter table cut at --limit: how many there are in all, and how to see them. */
export function moreDeadLetters (shown: number, total: number | undefined): string {
  const all = total === undefined || total <= shown ? 'more' : String(total)
  return `showing the oldest ${shown} of ${all} dead letters; raise --limit to see more\n`
}

/** Each line of a multi-line value, indented under its label so that it cannot pass for one. */
function indented (text: string): string {
  return text.split('\n').map((line) => '  ' + line).join('\n')
}

export function describeOutcome (outcome: EventOutcome): string {
  const rows: Array<[string, string]> = [
    ['id', printable(outcome.id)],
    ['type', printable(outcome.type)],
    ['state', printable(outcome.state)],
    ['received', outcome.receivedAt.toISOString()],
    ['attempts', String(outcome.attempts)]
  ]
  if (outcome.lastError !== undefined) rows.push(['last error', printable(oneLine(outcome.lastError, 1000))])
  if (outcome.finishedAt !== undefined) rows.push(['finished', outcome.finishedAt.toISOString()])
  if (outcome.orderingKey !== undefined) rows.push(['ordering key', printable(outcome.orderingKey)])
  if (outcome.skipped === 'stale') rows.push(['outcome', 'stale: not run, a newer event of its ordering key was handled first (ordering.skipStale)'])
  if (outcome.stale !== undefined) rows.push(['stale', !outcome.stale ? 'no' : outcome.skipped === 'stale' ? 'yes: a newer event of its key was handled first (not run: ordering.skipStale)' : 'yes: a newer event of its key was handled first; its handlers were told ordering.stale'])
  // What a retry or a re-drive will not run again; a done event's handlers all finished.
  if (outcome.handled !== undefined) rows.push(['handled by', outcome.handled.length === 0 ? (outcome.state === 'pending' ? 'none yet' : 'none') : outcome.handled.map((key) => printable(key)).join(', ')])
  const width = Math.max(...rows.map(([label]) => label.length))
  const lines = rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`)
  // What was received, byte for byte where the store keeps the body; otherwise
  // the stored event, whose key order is the store's (Postgres jsonb sorts keys).
  if (outcome.body !== undefined) lines.push('body (as received):', indented(printableLines(outcome.body)))
  else if (outcome.event !== undefined) lines.push('event (as stored):', indented(printableLines(JSON.stringify(outcome.event, null, 2))))
  return lines.join('\n') + '\n'
}
