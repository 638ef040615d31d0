import { test } from 'tap'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { sign } from '../src/index.js'

const example = fileURLToPath(new URL('../examples/fastify/server.js', import.meta.url))

// `npm start` runs this example; it must start on its embedded default, tell the
// user how to send an event, accept a signed one and shut down cleanly.
test('examples/fastify starts on the embedded default and accepts a signed event', async (t) => {
  const child = spawn(process.execPath, [example], { env: { ...process.env, PORT: '0', SIR_WEBHOOK_SECRET: '', LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let output = ''
  child.stdout.on('data', (chunk) => { output += String(chunk) })
  child.stderr.on('data', (chunk) => { output += String(chunk) })
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL printed:\n${output}`)), 15_000)
    child.stdout.on('data', () => {
      const match = /listening on (http:\/\/\S+)/.exec(output)
      if (match?.[1] !== undefined) { clearTimeout(timer); resolve(match[1]) }
    })
  })
  t.match(output, /curl -i -X POST/, 'prints a ready curl line')
  t.match(output, /whsec_local_development_only/, 'says it uses the embedded development secret')

  const body = JSON.stringify({ id: 'evt_example_1', type: 'action.completed', data: { actionId: 'act_9', tokensDistributed: 3 } })
  const signed = sign({ secret: 'whsec_local_development_only', rawBody: body })
  const response = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-sir-signature': signed.signature, 'x-sir-timestamp': signed.timestamp } })
  t.equal(response.status, 200)
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.match(output, /"actionId":"act_9".*action completed: tokens distributed/, 'the handler ran and logged')

  const base = new URL(url).origin
  const metrics = await (await fetch(`${base}/metrics`)).text()
  t.match(metrics, /^sir_webhooks_deliveries_total\{sir_webhooks_outcome="accepted",otel_scope_name="sir-webhooks"\} 1$/m, '/metrics serves the receiver\'s counters for Prometheus')
  t.match(metrics, /^sir_webhooks_handler_duration_count\{[^}]*sir_webhooks_result="success"[^}]*\} [1-9]/m)
  const health = await fetch(`${base}/health`)
  t.equal(health.status, 200)
  t.match(await health.json(), { status: 'ok', reasons: [], stats: { deliveries: { accepted: 1 } } })

  child.kill('SIGTERM')
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  t.equal(code, 0, 'exits cleanly on SIGTERM')
})
