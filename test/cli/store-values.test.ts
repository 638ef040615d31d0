import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ensureBuilt, runCli } from './helpers.js'

ensureBuilt()

// A password as an operator might paste it, in the right place and in wrong ones.
const MARKER = 'S3cretPw-XYZZY'

t.test('no store value is ever echoed: 30 odd --store values holding a password', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sir-cli-store-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  mkdirSync(join(dir, MARKER))
  writeFileSync(join(dir, `${MARKER}.db`), 'not a database')
  // Ports 1 refuse at once: every value that parses fails fast, with the driver's own message.
  const values = [
    MARKER,
    `${MARKER}:`,
    `${MARKER}:rest`,
    `${MARKER}@127.0.0.1`,
    `${MARKER}:@127.0.0.1:1/0`,
    `sqlite:/nonexistent/${MARKER}/inbox.db`,
    `sqlite:${MARKER}`,
    `sqlite://${MARKER}`,
    `sqlite:///nonexistent/${MARKER}.db`,
    `sqlite:${join(dir, MARKER)}`,
    `sqlite:${join(dir, `${MARKER}.db`)}`,
    `sqlite:%E0%A4%A${MARKER}`,
    `redis://:${MARKER}@127.0.0.1:1`,
    `redis://default:${MARKER}@127.0.0.1:1/0`,
    `rediss://:${MARKER}@127.0.0.1:1`,
    `redis://:${MARKER}@127.0.0.1:notaport`,
    `redis://:${MARKER}@127.0.0.1:1/${MARKER}`,
    `redis://:${MARKER}@[::1:1`,
    `redis:${MARKER}`,
    `postgres://app:${MARKER}@127.0.0.1:1/db`,
    `postgresql://app:${MARKER}@127.0.0.1:1/db?sslmode=disable`,
    `postgres://app:${MARKER}@127.0.0.1:99999/db`,
    `postgres://app:${MARKER}%40x@127.0.0.1:1/db`,
    `postgres://app:${MARKER}/x@127.0.0.1:1/db`,
    `postgres://app:${MARKER}#x@127.0.0.1:1/db`,
    `postgres://app:${encodeURIComponent(MARKER + ' ?&')}@127.0.0.1:1/db`,
    `mongodb://admin:${MARKER}@db/x`,
    `http://app:${MARKER}@127.0.0.1:1/`,
    `file:${MARKER}.db`,
    ` ${MARKER} `
  ]
  t.equal(values.length, 30)
  // Each in a process of its own, so that what a driver or Node prints straight
  // to the process's streams is searched too, not only the CLI's own output. A
  // few at a time: the machine is shared.
  for (let start = 0; start < values.length; start += 5) {
    await Promise.all(values.slice(start, start + 5).map(async (value, index) => {
      // Half through the flag, half through the variable.
      const viaEnv = (start + index) % 2 === 1
      const result = await runCli(['inbox', 'stats', ...(viaEnv ? [] : ['--store', value])], viaEnv ? { env: { SIR_WEBHOOKS_STORE: value }, spawned: true } : { spawned: true })
      const output = result.stdout + result.stderr
      t.not(result.code, 0, `${start + index}: refused or failed`)
      t.notOk(output.includes(MARKER), `${start + index}: the password is in no output`)
      t.notOk(output.toLowerCase().includes(MARKER.toLowerCase()), `${start + index}: not even lower-cased`)
      t.notOk(output.includes(encodeURIComponent(MARKER + ' ?&')), `${start + index}: nor percent-encoded`)
      t.match(result.stderr, /^sir-webhooks inbox: \S/, `${start + index}: says what went wrong`)
    }))
  }
})

t.test('a value that is no store URL names the expected forms', async (t) => {
  const result = await runCli(['inbox', 'stats', '--store', `${MARKER}:x`])
  t.equal(result.code, 2)
  t.match(result.stderr, '--store must be sqlite:PATH, redis://[user:password@]host[:port][/db] or postgres://[user:password@]host[:port]/database')
  t.notMatch(result.stderr, /got a value|starting/, 'no part of it quoted back')
})
