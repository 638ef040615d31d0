import { writeFile } from 'node:fs/promises'
import { exponentialSchedule } from '../testing/sender.js'
import { simulate, type SimulationProgress } from '../testing/simulate.js'
import { formatSummary } from '../testing/summary.js'
import type { EventName } from '../core/events.js'
import { EXIT_FAILED, EXIT_OK, numberFlag, parseDuration, secretFlag, shareFlag, stringFlag, urlFlag, type Command, type Flags } from './args.js'
import { parseEventType } from './event-flags.js'

function retrySchedule (flags: Flags): number[] {
  const raw = stringFlag(flags, 'retry-schedule')
  if (raw === undefined) return exponentialSchedule(1000, 5)
  if (raw.trim() === 'none') return []
  return raw.split(',').map((part) => parseDuration(part, 'retry-schedule'))
}

function progressLine (progress: SimulationProgress, width: number): string {
  const done = progress.planned === 0 ? 1 : progress.finished / progress.planned
  const bar = '#'.repeat(Math.round(done * width)).padEnd(width, '.')
  return `\r\x1b[K[${bar}] ${progress.finished}/${progress.planned} done  ${progress.delivered} delivered  ${progress.givenUp} given up  ${progress.attempts} attempts`
}

export const simulateCommand: Command = {
  name: 'simulate',
  summary: "play the platform's sender: a stream of events with retries, duplicates and reordering",
  usage: `Usage: sir-webhooks simulate --url URL --secret SECRET [--events N] [--rate R] [--duplicates P] [--skew SECONDS] [--retry-schedule LIST] [--json FILE]

Sends events as SIR Giving's sender would: non-2xx answers (or none within the
timeout) are retried with exponential backoff, each attempt signed afresh; a
share of events is sent twice and a share out of order. Half the actions it
completes are reversed a few events later (same data.actionId), so reordering
reaches one action's events. Prints a summary table.

  --url URL              the receiver's webhook route
  --secret SECRET        the signing secret (or set SIR_WEBHOOK_SECRET)
  --events N             distinct events to send (default 20)
  --rate R               deliveries started per second (default 10)
  --duplicates P         share of events delivered twice, 0 to 1 or a percentage (default 0.1)
  --out-of-order P       share of events sent after later ones (default 0.1)
  --skew SECONDS         sign with a clock this many seconds ahead (negative: behind)
  --retry-schedule LIST  delays before each retry, e.g. 500ms,1s,2s, or none (default 1s,2s,4s,8s,16s)
  --timeout MS           an attempt with no answer after MS ms has failed (default 10000)
  --types LIST           comma-separated event types to draw from (default: all 14)
  --seed N               repeat the same plan (types, reversals, order, duplicates); ids stay fresh
  --json FILE            write the delivery history (id, createdAt, data, attempts, statuses, latencies) as JSON

A progress bar is drawn on stderr when it is a terminal.

Exit codes: 0 every delivery was accepted; 1 some were given up (or interrupted); 2 bad command line.`,
  options: {
    url: { type: 'string' },
    secret: { type: 'string' },
    events: { type: 'string' },
    rate: { type: 'string' },
    duplicates: { type: 'string' },
    'out-of-order': { type: 'string' },
    skew: { type: 'string' },
    'retry-schedule': { type: 'string' },
    timeout: { type: 'string' },
    types: { type: 'string' },
    seed: { type: 'string' },
    json: { type: 'string' }
  },
  async run (flags, io) {
    const url = urlFlag(flags)
    const secret = secretFlag(flags, io)
    const events = numberFlag(flags, 'events', { min: 1, integer: true })
    const rate = numberFlag(flags, 'rate', { min: 0.01 })
    const duplicates = shareFlag(flags, 'duplicates')
    const outOfOrder = shareFlag(flags, 'out-of-order')
    const skewSeconds = numberFlag(flags, 'skew', { integer: true })
    const timeoutMs = numberFlag(flags, 'timeout', { min: 1, integer: true })
    const seed = numberFlag(flags, 'seed', { min: 0, integer: true })
    const typesFlag = stringFlag(flags, 'types')
    const types: EventName[] | undefined = typesFlag?.split(',').map((type) => parseEventType(type.trim(), 'types'))
    const jsonFile = stringFlag(flags, 'json')
    const schedule = retrySchedule(flags)

    // Ctrl-C stops retrying and still prints what happened so far.
    const interrupt = new AbortController()
    const stop = (): void => interrupt.abort()
    process.once('SIGINT', stop)
    const showProgress = io.stderr.isTTY === true
    const width = Math.max(10, Math.min(30, (io.stderr.columns ?? 80) - 60))
    try {
      const result = await simulate({
        url,
        secret,
        retrySchedule: schedule,
        signal: interrupt.signal,
        ...(events === undefined ? {} : { events }),
        ...(rate === undefined ? {} : { rate }),
        ...(duplicates === undefined ? {} : { duplicates }),
        ...(outOfOrder === undefined ? {} : { outOfOrder }),
        ...(skewSeconds === undefined ? {} : { skewSeconds }),
        ...(timeoutMs === undefined ? {} : { timeoutMs }),
        ...(types === undefined ? {} : { types }),
        ...(seed === undefined ? {} : { seed }),
        ...(showProgress ? { onProgress: (progress: SimulationProgress) => io.stderr.write(progressLine(progress, width)) } : {})
      })
      if (showProgress) io.stderr.write('\n')
      if (jsonFile !== undefined) {
        await writeFile(jsonFile, JSON.stringify({ url, startedAt: result.startedAt, summary: result.summary, deliveries: result.deliveries }, null, 2) + '\n')
      }
      io.stdout.write(formatSummary(result.summary) + '\n')
      if (jsonFile !== undefined) io.stdout.write(`history written to ${jsonFile}\n`)
      return result.summary.givenUp === 0 && result.summary.cancelled === 0 ? EXIT_OK : EXIT_FAILED
    } finally {
      process.off('SIGINT', stop)
    }
  }
}
