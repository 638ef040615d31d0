// The CLI as a function: its commands, overview and exit codes, for the
// `sir-webhooks` binary (main.ts) and for callers that run it in-process.
import { readFileSync } from 'node:fs'
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, parseFlags, type Command, type Io } from './args.js'
import { dashboardCommand } from './dashboard.js'
import { inboxCommand } from './inbox.js'
import { listenCommand } from './listen.js'
import { migrateCommand } from './migrate.js'
import { printable } from './printable.js'
import { sendCommand } from './send.js'
import { signCommand } from './sign.js'
import { simulateCommand } from './simulate.js'
import { verifyCommand } from './verify.js'

const commands: readonly Command[] = [sendCommand, simulateCommand, listenCommand, verifyCommand, signCommand, inboxCommand, dashboardCommand, migrateCommand]

function version (): string {
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  return manifest.version
}

function overview (): string {
  const width = Math.max(...commands.map((command) => command.name.length))
  return [
    'Usage: sir-webhooks <command> [flags]',
    '',
    'A local sender and receiver for SIR Giving webhooks, and a look into a durable inbox.',
    '',
    ...commands.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`),
    '',
    'Run "sir-webhooks <command> --help" for its flags.',
    '',
    'Exit codes: 0 ok; 1 delivery or verification failed; 2 bad command line.',
    ''
  ].join('\n')
}

export async function main (argv: readonly string[], io: Io): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined) {
    io.stderr.write(overview())
    return EXIT_USAGE
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(overview())
    return EXIT_OK
  }
  if (name === '--version' || name === '-v' || name === '-V') {
    io.stdout.write(version() + '\n')
    return EXIT_OK
  }
  const command = commands.find((candidate) => candidate.name === name)
  if (command === undefined) {
    io.stderr.write(`sir-webhooks: unknown command ${JSON.stringify(name)}\n\n${overview()}`)
    return EXIT_USAGE
  }
  try {
    const { flags, positionals } = parseFlags(command, rest)
    if (flags.help === true) {
      io.stdout.write((command.help?.(positionals) ?? command.usage) + '\n')
      return EXIT_OK
    }
    return await command.run(flags, io, positionals)
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`sir-webhooks ${command.name}: ${printable(error.message)}\nRun "sir-webhooks ${command.name} --help" for usage.\n`)
      return EXIT_USAGE
    }
    io.stderr.write(`sir-webhooks ${command.name}: ${printable(error instanceof Error ? error.message : String(error))}\n`)
    return EXIT_FAILED
  }
}
