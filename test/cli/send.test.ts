import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ensureBuilt, runCli, startListen } from './helpers.js'

ensureBuilt()

const secret = 'whsec_c2VuZC1zZWNyZXQ'

// The built binary, in a process of its own, end to end; the other cases run the CLI in-process.
t.test('send signs one event, POSTs it and prints status, latency and the response', async (t) => {
  const listener = await startListen(['--secret', secret])
  t.teardown(() => listener.stop())
  const result = await runCli(['send', '--url', listener.url, '--secret', secret, '--type', 'transaction.completed', '--id', 'evt_send_1'], { spawned: true })
  t.equal(result.code, 0)
  t.match(result.stdout, `POST ${listener.url}  transaction.completed evt_send_1`)
  t.match(result.stdout, /^200 in \d+\.\d ms$/m)
  t.match(result.stdout, '{"received":true}')
  await listener.waitFor((line) => line.startsWith('✓ transaction.completed  evt_send_1'))
})

t.test('send takes its data from a file', async (t) => {
  const listener = await startListen(['--secret', secret])
  t.teardown(() => listener.stop())
  const directory = mkdtempSync(join(tmpdir(), 'sir-cli-send-'))
  t.teardown(() => rmSync(directory, { recursive: true, force: true }))
  const file = join(directory, 'data.json')
  writeFileSync(file, JSON.stringify({ actionId: 'act_from_file', tokensDistributed: 3 }))
  const result = await runCli(['send', '--url', listener.url, '--secret', secret, '--type', 'action.completed', '--data-file', file])
  t.equal(result.code, 0)
  await listener.waitFor((line) => line.includes('"actionId": "act_from_file"'))
  const both = await runCli(['send', '--url', listener.url, '--secret', secret, '--type', 'action.completed', '--data-file', file, '--data', '{}'])
  t.equal(both.code, 2)
  t.match(both.stderr, 'give --data or --data-file, not both')
})

t.test('send exits 1 when the receiver refuses the delivery', async (t) => {
  const listener = await startListen(['--secret', secret])
  t.teardown(() => listener.stop())
  // The binary's exit code 1, as a shell sees it.
  const wrong = await runCli(['send', '--url', listener.url, '--secret', 'whsec_wrong', '--type', 'action.failed'], { spawned: true })
  t.equal(wrong.code, 1)
  t.match(wrong.stdout, /^401 in /m)
  t.match(wrong.stdout, 'SIGNATURE_MISMATCH')
  const skewed = await runCli(['send', '--url', listener.url, '--secret', secret, '--type', 'action.failed', '--skew=-900'])
  t.equal(skewed.code, 1)
  t.match(skewed.stdout, 'TIMESTAMP_OUT_OF_RANGE')
})

t.test('send exits 1 when nothing answers', async (t) => {
  // A port that was free a moment ago: nothing listens there now.
  const port = await new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0))
    })
  })
  const result = await runCli(['send', '--url', `http://127.0.0.1:${port}/webhooks/sir`, '--secret', secret, '--type', 'action.failed'])
  t.equal(result.code, 1)
  t.match(result.stderr, `delivery failed: cannot connect to http://127.0.0.1:${port}/webhooks/sir: connection refused (ECONNREFUSED)`, 'names the URL and why')
  t.notMatch(result.stderr, 'fetch failed')
  t.notMatch(result.stderr, secret)
})

t.test('send says when a receiver accepts the connection but never answers', async (t) => {
  const sockets = new Set<Socket>()
  const silent = createServer((socket) => { sockets.add(socket) })
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const socket of sockets) socket.destroy(); silent.close() })
  const address = silent.address() as { port: number }
  const url = `http://127.0.0.1:${address.port}/webhooks/sir`
  const result = await runCli(['send', '--url', url, '--secret', secret, '--type', 'action.failed', '--timeout', '300'])
  t.equal(result.code, 1)
  t.match(result.stderr, `delivery failed: no answer from ${url} within 300 ms (timed out`)
})

t.test('send says when the host name does not resolve', async (t) => {
  // .invalid never resolves (RFC 6761): ENOTFOUND, or EAI_AGAIN on a machine without DNS.
  const url = 'http://sir-webhooks-test.invalid/webhooks/sir'
  const result = await runCli(['send', '--url', url, '--secret', secret, '--type', 'action.failed', '--timeout', '20000'])
  t.equal(result.code, 1)
  t.match(result.stderr, new RegExp(`delivery failed: cannot connect to ${url.replaceAll('.', '\\.')}: DNS lookup of sir-webhooks-test\\.invalid failed \\((ENOTFOUND|EAI_AGAIN)\\)`))
})

t.test('send prints a receiver\'s answer with its control characters shown, not obeyed', async (t) => {
  const { createServer: createHttpServer } = await import('node:http')
  const server = createHttpServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/plain' })
    response.end('{"ok":true}\u001b[2J\u001b[H\u009b32mALL GOOD\u0007\r\nsecond line')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const { port } = server.address() as { port: number }
  const result = await runCli(['send', '--url', `http://127.0.0.1:${port}/webhooks/sir`, '--secret', secret, '--type', 'campaign.paused'])
  t.equal(result.code, 0)
  t.match(result.stdout, '{"ok":true}\\x1b[2J\\x1b[H\\x9b32mALL GOOD\\x07\\x0d\nsecond line\n')
  // eslint-disable-next-line no-control-regex
  t.notMatch(result.stdout, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/)
})
