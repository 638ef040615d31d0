import { test } from 'tap'
import fc from 'fast-check'
import { sign, verify } from '../src/core/verify-node.js'
import { signAsync, verifyAsync } from '../src/core/verify-web.js'
import { consoleLogger } from '../src/core/console-logger.js'

// The Web Crypto path must be indistinguishable from the Node one; the vectors
// (vectors.test.ts) check both against known answers, this checks them against
// each other on arbitrary input.
test('signAsync and verifyAsync agree with sign and verify for any bytes and secret', async (t) => {
  const now = 1_780_000_000_000
  await fc.assert(fc.asyncProperty(
    fc.uint8Array({ maxLength: 512 }),
    fc.string({ minLength: 1, maxLength: 40 }),
    fc.integer({ min: -300, max: 300 }),
    async (body, secret, offset) => {
      const timestamp = now / 1000 + offset
      const web = await signAsync({ secret, rawBody: body, timestamp })
      const node = sign({ secret, rawBody: body, timestamp })
      if (web.signature !== node.signature || web.timestamp !== node.timestamp) return false
      const input = { secret: ['whsec_other', secret], rawBody: body, now, ...web }
      const [webResult, nodeResult] = [await verifyAsync(input), verify(input)]
      return JSON.stringify(webResult) === JSON.stringify(nodeResult) && webResult.ok && webResult.secretIndex === 1
    }
  ), { numRuns: 150 })
  t.pass('150 random deliveries')
})

test('the console logger writes pino-shaped JSON lines with secrets masked', async (t) => {
  const lines: string[] = []
  const logger = consoleLogger({ name: 'sir-webhooks' }, (line) => { lines.push(line) })
  const child = logger.child({ event: { id: 'evt_1', type: 'action.completed' } })
  child.debug({ ignored: true }, 'below the level')
  child.info({ reason: 'SIGNATURE_MISMATCH', headers: { 'x-sir-signature': 'sha256=leak' }, secret: 'whsec_leak' }, 'webhook rejected')
  child.error({ err: new Error('ledger down') }, 'handler failed')
  logger.warn('plain message')
  const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
  t.equal(entries.length, 3)
  t.match(entries[0], { level: 30, name: 'sir-webhooks', event: { id: 'evt_1' }, reason: 'SIGNATURE_MISMATCH', msg: 'webhook rejected', secret: '[redacted]', headers: { 'x-sir-signature': '[redacted]' } })
  t.match(entries[1], { level: 50, err: { type: 'Error', message: 'ledger down' } })
  t.match(entries[2], { level: 40, msg: 'plain message' })
  t.notOk(lines.join('').includes('leak'))
})
