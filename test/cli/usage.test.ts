import { readFileSync } from 'node:fs'
import t from 'tap'
import { eventNames } from '../../src/core/events.js'
import { ensureBuilt, runCli } from './helpers.js'

ensureBuilt()

const commands = ['send', 'simulate', 'listen', 'verify', 'sign']

t.test('every command prints its usage with --help and exits 0', async (t) => {
  for (const command of commands) {
    const result = await runCli([command, '--help'])
    t.equal(result.code, 0, `${command} --help exits 0`)
    t.match(result.stdout, `Usage: sir-webhooks ${command}`, `${command} --help shows its usage`)
    t.match(result.stdout, /Exit codes:/, `${command} --help documents its exit codes`)
  }
})

// These two run the built binary in a process of its own: its exit codes as a shell sees them.
t.test('the overview lists every command; no command at all is a usage error', async (t) => {
  const help = await runCli(['--help'], { spawned: true })
  t.equal(help.code, 0)
  for (const command of commands) t.match(help.stdout, new RegExp(`^  ${command} `, 'm'))
  const none = await runCli([], { spawned: true })
  t.equal(none.code, 2)
  t.match(none.stderr, 'Usage: sir-webhooks <command>')
})

t.test('an unknown command exits 2 and names it', async (t) => {
  const result = await runCli(['sned'], { spawned: true })
  t.equal(result.code, 2)
  t.match(result.stderr, 'unknown command "sned"')
})

t.test('an unknown flag exits 2 and names the flag, for every command', async (t) => {
  for (const command of commands) {
    const result = await runCli([command, '--bogus-flag'])
    t.equal(result.code, 2, `${command} exits 2`)
    t.match(result.stderr, '--bogus-flag', `${command} names the flag`)
    t.match(result.stderr, `sir-webhooks ${command} --help`, `${command} points to its help`)
  }
})

t.test('a missing or bad value names the flag and exits 2', async (t) => {
  const cases: Array<[string[], string]> = [
    [['send', '--secret', 's', '--type', 'action.completed'], '--url is required'],
    [['send', '--url', 'http://127.0.0.1:1/x', '--type', 'action.completed'], '--secret is required'],
    [['send', '--url', 'http://127.0.0.1:1/x', '--secret', 's', '--type', 'action.complete'], '--type must be one of'],
    [['send', '--url', 'http://127.0.0.1:1/x', '--secret', 's', '--type', 'action.completed', '--data', '[1]'], '--data must be a JSON object'],
    [['send', '--url', 'http://127.0.0.1:1/x', '--secret', 's', '--type', 'action.completed', '--data', '{'], '--data is not valid JSON'],
    [['send', '--url', 'not a url', '--secret', 's', '--type', 'action.completed'], '--url must be an absolute URL'],
    [['simulate', '--url', 'http://127.0.0.1:1/x', '--secret', 's', '--events', '0'], '--events must be at least 1'],
    [['simulate', '--url', 'http://127.0.0.1:1/x', '--secret', 's', '--duplicates', '1.5'], '--duplicates must be a share'],
    [['simulate', '--url', 'http://127.0.0.1:1/x', '--secret', 's', '--retry-schedule', '1s,soon'], '--retry-schedule: "soon" is not a duration'],
    [['simulate', '--url', 'http://127.0.0.1:1/x', '--secret', 's', '--types', 'action.completed,nope'], '--types must be one of'],
    [['listen', '--port', '70000'], '--port must be at most 65535'],
    [['verify', '--secret', 's', '--signature', 'sha256=00'], '--timestamp is required'],
    [['sign', '--secret', 's', '--data', '{}'], '--data needs --type'],
    [['send', '--url'], "Option '--url <value>' argument missing"]
  ]
  for (const [args, message] of cases) {
    const result = await runCli(args)
    t.equal(result.code, 2, `${args.join(' ')} exits 2`)
    t.match(result.stderr, message, `${args.join(' ')} says ${message}`)
  }
})

t.test('--version, -v and -V print the package version', async (t) => {
  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  for (const flag of ['--version', '-v', '-V']) {
    const result = await runCli([flag])
    t.equal(result.code, 0, `${flag} exits 0`)
    t.equal(result.stdout, `${version}\n`, `${flag} prints the version`)
  }
})

t.test('send --help and sign --help list every documented event type they promise', async (t) => {
  for (const command of ['send', 'sign']) {
    const result = await runCli([command, '--help'])
    t.match(result.stdout, 'listed below', `${command} --help promises the list`)
    for (const type of eventNames) t.match(result.stdout, new RegExp(`^  ${type.replaceAll('.', '\\.')}$`, 'm'), `${command} --help lists ${type}`)
  }
})
