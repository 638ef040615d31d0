import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { ensureBuilt, root } from './helpers.js'

ensureBuilt()

/** Runs an example to its exit with PORT given; `npm start` sets npm_lifecycle_event=start. */
function runExample (name: string, env: Record<string, string>): Promise<{ code: number | null, stderr: string, stdout: string }> {
  const script = fileURLToPath(new URL(`../../examples/${name}/server.js`, import.meta.url))
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script], { cwd: root, env: { ...process.env, HOST: '127.0.0.1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, 30_000)
    child.on('error', reject)
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
  })
}

t.test('a busy port names PORT instead of printing an EADDRINUSE stack, for every example', async (t) => {
  const busy = createServer()
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { busy.close() })
  const { port } = busy.address() as { port: number }
  for (const name of ['fastify', 'express', 'node-http', 'fetch']) {
    const result = await runExample(name, { PORT: String(port), ...(name === 'fastify' ? { npm_lifecycle_event: 'start' } : {}) })
    t.equal(result.code, 1, `${name}: exits 1`)
    t.match(result.stderr, `Port ${port} on 127.0.0.1 is already in use (EADDRINUSE)`, `${name}: says the port is busy`)
    t.match(result.stderr, name === 'fastify' ? `PORT=3000 npm start` : `PORT=3000 node examples/${name}/server.js`, `${name}: says to set PORT`)
    t.notMatch(result.stderr, /\n\s+at /, `${name}: no stack trace`)
  }
})
