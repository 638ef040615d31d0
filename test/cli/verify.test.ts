import { writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { sign } from '../../src/index.js'
import { ensureBuilt, runCli } from './helpers.js'

ensureBuilt()

const secret = 'whsec_c2lyLWdpdmluZy10ZXN0LXNlY3JldA'
const compact = JSON.stringify({ id: 'evt_verify_1', type: 'action.completed', createdAt: '2026-05-10T09:12:00Z', data: { actionId: 'act_1', tokensDistributed: 50 } })
const now = (): number => Math.floor(Date.now() / 1000)

const directory = mkdtempSync(join(tmpdir(), 'sir-cli-verify-'))
t.teardown(() => rmSync(directory, { recursive: true, force: true }))
let files = 0
function bodyFile (body: string): string {
  const file = join(directory, `body-${files++}.json`)
  writeFileSync(file, body)
  return file
}

async function verifyCli (options: { secret: string, timestamp: string, signature: string, body: string, viaStdin?: boolean }) {
  const args = ['verify', '--secret', options.secret, '--timestamp', options.timestamp, '--signature', options.signature]
  return options.viaStdin === true
    ? runCli(args, { stdin: options.body })
    : runCli([...args, '--body-file', bodyFile(options.body)])
}

t.test('a good signature verifies: exit 0', async (t) => {
  const signed = sign({ secret, rawBody: compact })
  const result = await verifyCli({ secret, ...signed, body: compact })
  t.equal(result.code, 0)
  t.match(result.stdout, /^verifies/)
})

t.test('the body can come on stdin', async (t) => {
  const signed = sign({ secret, rawBody: compact })
  const result = await verifyCli({ secret, ...signed, body: compact, viaStdin: true })
  t.equal(result.code, 0)
  t.match(result.stdout, /^verifies/)
})

t.test('the secret can come from SIR_WEBHOOK_SECRET', async (t) => {
  const signed = sign({ secret, rawBody: compact })
  const result = await runCli(['verify', '--timestamp', signed.timestamp, '--signature', signed.signature, '--body-file', bodyFile(compact)], { env: { SIR_WEBHOOK_SECRET: secret } })
  t.equal(result.code, 0)
})

// Each failure cause the issue names, produced the way it happens in practice.
const causes: Array<{ name: string, code: string, make: () => { secret: string, timestamp: string, signature: string, body: string }, says?: RegExp }> = [
  {
    name: 'clock skew of N seconds',
    code: 'CLOCK_SKEW',
    make: () => ({ secret, ...sign({ secret, rawBody: compact, timestamp: now() - 1000 }), body: compact }),
    // A second or more passes while the CLI starts on a loaded machine: the skew only grows.
    says: /Clock skew of (999|10[0-5][0-9]) seconds/
  },
  {
    name: 'a body re-serialized (pretty-printed) after signing',
    code: 'BODY_RESERIALIZED',
    make: () => ({ secret, ...sign({ secret, rawBody: compact }), body: JSON.stringify(JSON.parse(compact), null, 2) }),
    says: /JSON\.stringify\(JSON\.parse\(body\)\)/
  },
  {
    name: 'a trailing newline added to the body',
    code: 'TRAILING_NEWLINE',
    make: () => ({ secret, ...sign({ secret, rawBody: compact }), body: compact + '\n' })
  },
  {
    name: 'a secret with surrounding whitespace',
    code: 'SECRET_WHITESPACE',
    make: () => ({ secret: ` ${secret}\n`, ...sign({ secret, rawBody: compact }), body: compact })
  },
  {
    name: 'a secret that lacks the whsec_ prefix',
    code: 'SECRET_LACKS_PREFIX',
    make: () => ({ secret: secret.slice('whsec_'.length), ...sign({ secret, rawBody: compact }), body: compact })
  },
  {
    name: 'a signature made without the whsec_ prefix',
    code: 'SECRET_HAS_PREFIX',
    make: () => ({ secret, ...sign({ secret: secret.slice('whsec_'.length), rawBody: compact }), body: compact })
  },
  {
    name: 'uppercase hex',
    code: 'UPPERCASE_HEX',
    make: () => {
      const signed = sign({ secret, rawBody: compact })
      return { secret, timestamp: signed.timestamp, signature: 'sha256=' + signed.signature.slice('sha256='.length).toUpperCase(), body: compact }
    }
  },
  {
    name: 'a secret that is simply wrong',
    code: 'UNKNOWN',
    make: () => ({ secret, ...sign({ secret: 'whsec_another-endpoint', rawBody: compact }), body: compact })
  }
]

for (const cause of causes) {
  t.test(`verify names the reason: ${cause.name}`, async (t) => {
    const input = cause.make()
    const result = await verifyCli(input)
    t.equal(result.code, 1, 'does not verify: exit 1')
    t.match(result.stdout, /^does not verify/)
    t.match(result.stdout, new RegExp(`reason: ${cause.code}:`), `the likeliest reason is ${cause.code}`)
    if (cause.says !== undefined) t.match(result.stdout, cause.says)
    t.notMatch(result.stdout + result.stderr, input.signature.slice('sha256='.length).toLowerCase(), 'the signature is not echoed')
    t.notMatch(result.stdout + result.stderr, secret.trim(), 'the secret is not echoed')
  })
}

t.test('two causes together are both named', async (t) => {
  const signed = sign({ secret, rawBody: compact })
  const result = await verifyCli({ secret: secret + ' ', ...signed, body: compact + '\n' })
  t.equal(result.code, 1)
  t.match(result.stdout, 'SECRET_WHITESPACE')
  t.match(result.stdout, 'TRAILING_NEWLINE')
})

t.test('--at judges the timestamp as of another time', async (t) => {
  const signed = sign({ secret, rawBody: compact, timestamp: 1_700_000_000 })
  const late = await verifyCli({ secret, ...signed, body: compact })
  t.match(late.stdout, 'CLOCK_SKEW')
  const result = await runCli(['verify', '--secret', secret, ...['--timestamp', signed.timestamp, '--signature', signed.signature], '--at', '1700000010', '--body-file', bodyFile(compact)])
  t.equal(result.code, 0)
  t.match(result.stdout, 'verifies (timestamp 10 s ago')
})

t.test('an unreadable body file is a usage error naming --body-file', async (t) => {
  const result = await runCli(['verify', '--secret', secret, '--timestamp', String(now()), '--signature', 'sha256=' + '0'.repeat(64), '--body-file', join(directory, 'missing.json')])
  t.equal(result.code, 2)
  t.match(result.stderr, '--body-file: cannot read')
})

t.test('an empty stdin is a usage error that names --body-file, not a verdict on an empty body', async (t) => {
  const signed = sign({ secret, rawBody: '' })
  const result = await runCli(['verify', '--secret', secret, '--timestamp', signed.timestamp, '--signature', signed.signature], { stdin: '' })
  t.equal(result.code, 2)
  t.match(result.stderr, /stdin was empty: give the body with --body-file FILE/)
})
