import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { ensureBuilt, root } from './helpers.js'

ensureBuilt()

t.test('npm run demo ends by itself and shows events verified, retried after 503, deduplicated and handled', async (t) => {
  const demo = fileURLToPath(new URL('../../examples/demo.js', import.meta.url))
  const child = spawn(process.execPath, [demo], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  clearTimeout(timer)
  t.equal(code, 0, 'it exits 0 on its own')
  t.match(stdout, /^ {2}verified\s+\d+ deliveries/m)
  t.match(stdout, /^ {2}refused 503\s+[1-9]\d* while the queue was full/m, 'the receiver answered 503 at least once')
  t.match(stdout, /^ {2}retried after 503\s+[1-9]\d* deliveries/m, 'and the sender got those through on a later attempt')
  t.match(stdout, /^ {2}deduplicated\s+\d+ deliveries/m)
  t.match(stdout, /^ {2}handled\s+40 events, each exactly once$/m)
  t.match(stdout, /^ {2}given up\s+0$/m)
})
