import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { verify } from '../../src/index.js'
import { ensureBuilt, runCli, startListen } from './helpers.js'

ensureBuilt()

const run = promisify(execFile)
const secret = 'whsec_c2lnbi1zZWNyZXQ'

function headersOf (stdout: string): { timestamp: string, signature: string, curl: string } {
  const timestamp = /^X-SIR-Timestamp: (\d+)$/m.exec(stdout)?.[1] ?? ''
  const signature = /^X-SIR-Signature: (sha256=[0-9a-f]{64})$/m.exec(stdout)?.[1] ?? ''
  const curl = stdout.split('\n').find((line) => line.startsWith('curl ')) ?? ''
  return { timestamp, signature, curl }
}

t.test('sign prints the two headers for a body file, and they verify', async (t) => {
  const directory = mkdtempSync(join(tmpdir(), 'sir-cli-sign-'))
  t.teardown(() => rmSync(directory, { recursive: true, force: true }))
  const body = '{"id":"evt_sign_1","type":"campaign.activated","createdAt":"2026-05-10T09:12:00Z","data":{"name":"it\'s on"}}'
  const file = join(directory, "body with 'quotes'.json")
  writeFileSync(file, body)
  const result = await runCli(['sign', '--secret', secret, '--body-file', file, '--timestamp', '1778404320'])
  t.equal(result.code, 0)
  const { timestamp, signature } = headersOf(result.stdout)
  t.equal(timestamp, '1778404320')
  t.equal(verify({ secret, rawBody: body, signature, timestamp, now: 1_778_404_320_000 }).ok, true)
})

t.test('the curl line sign prints is accepted by a real receiver', async (t) => {
  const listener = await startListen(['--secret', secret])
  t.teardown(() => listener.stop())
  const directory = mkdtempSync(join(tmpdir(), 'sir-cli-sign-'))
  t.teardown(() => rmSync(directory, { recursive: true, force: true }))

  const generated = await runCli(['sign', '--secret', secret, '--type', 'campaign.activated', '--data', '{"name":"it\'s live"}', '--url', listener.url])
  t.equal(generated.code, 0)
  const inline = await run('sh', ['-c', headersOf(generated.stdout).curl])
  t.same(JSON.parse(inline.stdout), { received: true }, 'an inline body, quotes and all, verifies')
  await listener.waitFor((line) => line.includes('"name": "it\'s live"'))

  const file = join(directory, "it's.json")
  writeFileSync(file, '{"id":"evt_sign_file","type":"campaign.paused","createdAt":"2026-05-10T09:12:00Z","data":{}}\n')
  const fromFile = await runCli(['sign', '--secret', secret, '--body-file', file, '--url', listener.url])
  const sent = await run('sh', ['-c', headersOf(fromFile.stdout).curl])
  t.same(JSON.parse(sent.stdout), { received: true }, 'a file body is sent byte for byte, trailing newline included')
  await listener.waitFor((line) => line.startsWith('✓ campaign.paused  evt_sign_file'))

  const piped = await runCli(['sign', '--secret', secret, '--url', listener.url], { stdin: '{"id":"evt_sign_stdin","type":"campaign.completed","createdAt":"2026-05-10T09:12:00Z","data":{}}' })
  const fromStdin = await run('sh', ['-c', headersOf(piped.stdout).curl])
  t.same(JSON.parse(fromStdin.stdout), { received: true })
  await listener.waitFor((line) => line.startsWith('✓ campaign.completed  evt_sign_stdin'))
})
