import { readFile } from 'node:fs/promises'
import { parseArgs, type ParseArgsConfig } from 'node:util'

/** Exit codes scripts can rely on. */
export const EXIT_OK = 0
/** A delivery was not accepted, a signature did not verify, a simulation gave up on some. */
export const EXIT_FAILED = 1
/** The command line was wrong: an unknown flag, a missing or bad value. */
export const EXIT_USAGE = 2

/** A mistake in the command line; its message names the flag. */
export class UsageError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'UsageError'
  }
}

export interface Io {
  stdout: NodeJS.WritableStream & { isTTY?: boolean }
  stderr: NodeJS.WritableStream & { isTTY?: boolean, columns?: number }
  stdin: NodeJS.ReadableStream & { isTTY?: boolean }
  env: NodeJS.ProcessEnv
}

export interface Command {
  name: string
  summary: string
  usage: string
  /** The help for `--help` given with these words (`inbox dead --help`); `usage` when absent. */
  help?: (positionals: readonly string[]) => string
  options: NonNullable<ParseArgsConfig['options']>
  /** Takes words besides flags (`inbox show ID`); the others refuse them. */
  positionals?: boolean
  run (values: Flags, io: Io, positionals: readonly string[]): Promise<number>
}

export type Flags = Record<string, string | boolean | undefined>

/** `node:util` parseArgs in strict mode, its errors turned into usage errors. */
export function parseFlags (command: Command, argv: readonly string[]): { flags: Flags, positionals: readonly string[] } {
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: command.positionals === true
    })
    return { flags: values as Flags, positionals }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    throw new UsageError(message)
  }
}

export function stringFlag (flags: Flags, name: string): string | undefined {
  const value = flags[name]
  return typeof value === 'string' ? value : undefined
}

export function requiredFlag (flags: Flags, name: string): string {
  const value = stringFlag(flags, name)
  if (value === undefined || value.length === 0) throw new UsageError(`--${name} is required`)
  return value
}

/** `--url`, an absolute URL: required, unless a fallback is given. */
export function urlFlag (flags: Flags, fallback?: string): string {
  const url = fallback === undefined ? requiredFlag(flags, 'url') : stringFlag(flags, 'url') ?? fallback
  if (!URL.canParse(url)) throw new UsageError(`--url must be an absolute URL, got ${JSON.stringify(url)}`)
  return url
}

/** `--secret`, or `SIR_WEBHOOK_SECRET` so the secret stays out of shell history. */
export function secretFlag (flags: Flags, io: Io): string {
  const value = stringFlag(flags, 'secret') ?? io.env.SIR_WEBHOOK_SECRET
  if (value === undefined || value.length === 0) throw new UsageError('--secret is required (or set SIR_WEBHOOK_SECRET)')
  return value
}

export function numberFlag (flags: Flags, name: string, { min, max, integer = false }: { min?: number, max?: number, integer?: boolean }): number | undefined {
  const raw = stringFlag(flags, name)
  if (raw === undefined) return undefined
  const value = Number(raw)
  const kind = integer ? 'an integer' : 'a number'
  if (raw.trim() === '' || !Number.isFinite(value) || (integer && !Number.isSafeInteger(value))) {
    throw new UsageError(`--${name} must be ${kind}, got ${JSON.stringify(raw)}`)
  }
  if (min !== undefined && value < min) throw new UsageError(`--${name} must be at least ${min}, got ${raw}`)
  if (max !== undefined && value > max) throw new UsageError(`--${name} must be at most ${max}, got ${raw}`)
  return value
}

/** A share as `0.1` or `10%`. */
export function shareFlag (flags: Flags, name: string): number | undefined {
  const raw = stringFlag(flags, name)
  if (raw === undefined) return undefined
  const percent = raw.endsWith('%')
  const value = Number(percent ? raw.slice(0, -1) : raw) / (percent ? 100 : 1)
  if (raw.trim() === '' || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new UsageError(`--${name} must be a share from 0 to 1 (or 0% to 100%), got ${JSON.stringify(raw)}`)
  }
  return value
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m)?$/
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000 }

/** `250`, `250ms`, `1.5s`, `2m` → milliseconds. */
export function parseDuration (raw: string, flag: string): number {
  const match = DURATION.exec(raw.trim())
  if (match === null) throw new UsageError(`--${flag}: ${JSON.stringify(raw)} is not a duration (use 500ms, 2s or 1m)`)
  return Math.round(Number(match[1]) * (UNIT_MS[match[2] ?? 'ms'] ?? 1))
}

export async function readStream (stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)
  return Buffer.concat(chunks)
}

/** The body from `--body-file`, or piped on stdin; never from a terminal, where it would wait forever. */
export async function readBody (flags: Flags, io: Io): Promise<{ body: Buffer, file?: string }> {
  const file = stringFlag(flags, 'body-file')
  if (file !== undefined) {
    try {
      return { body: await readFile(file), file }
    } catch (error) {
      throw new UsageError(`--body-file: cannot read ${JSON.stringify(file)} (${(error as NodeJS.ErrnoException).code ?? String(error)})`)
    }
  }
  if (io.stdin.isTTY === true) throw new UsageError('give the body with --body-file FILE or pipe it on stdin')
  const body = await readStream(io.stdin)
  // No delivery has an empty body; an empty stdin is a script that forgot --body-file.
  if (body.byteLength === 0) throw new UsageError('stdin was empty: give the body with --body-file FILE or pipe it on stdin')
  return { body }
}
