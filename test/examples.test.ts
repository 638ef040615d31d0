import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { test, type Test } from 'tap'
import { sign } from '../src/index.js'
import { ensureBuilt } from './cli/helpers.js'

// Every example imports the built package (`sir-webhooks` resolves to dist/).
ensureBuilt()

const DEVELOPMENT_SECRET = 'whsec_local_development_only'
// Long enough that SIGTERM surely lands while the handler still runs, on a loaded machine too.
const SLOW_HANDLER_MS = 1500

interface Example {
  output: () => string
  url: string
  /** The internal port's base URL, where /health and /metrics are served. */
  internal: string
  exit: Promise<number | null>
  kill: (signal: NodeJS.Signals) => void
}

async function startExample (t: Test, name: string, env: Record<string, string> = {}): Promise<Example> {
  const script = fileURLToPath(new URL(`../examples/${name}/server.js`, import.meta.url))
  const child = spawn(process.execPath, [script], {
    env: { ...process.env, PORT: '0', INTERNAL_PORT: '0', SIR_WEBHOOK_SECRET: '', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => { resolve(code) }))
  const [url, internal] = await new Promise<[string, string]>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`no URLs printed:\n${output}`)) }, 20_000)
    const look = (): void => {
      const match = /listening on (http:\/\/\S+)/.exec(output)
      const health = /^health: +(http:\/\/\S+)\/health/m.exec(output)
      if (match?.[1] !== undefined && health?.[1] !== undefined) { clearTimeout(timer); resolve([match[1], health[1]]) }
    }
    child.stdout.on('data', look)
    void exit.then((code) => { clearTimeout(timer); reject(new Error(`exited (${String(code)}) before listening:\n${output}`)) })
  })
  return { output: () => output, url, internal, exit, kill: (signal) => { child.kill(signal) } }
}

async function deliver (url: string, id: string): Promise<number> {
  const body = JSON.stringify({ id, type: 'action.completed', createdAt: new Date().toISOString(), data: { actionId: `act_${id}`, tokensDistributed: 3 } })
  const signed = sign({ secret: DEVELOPMENT_SECRET, rawBody: body })
  const response = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-sir-signature': signed.signature, 'x-sir-timestamp': signed.timestamp } })
  await response.arrayBuffer()
  return response.status
}

/** The log line the example's action.completed handler writes when it has finished. */
function handlerFinished (output: string, id: string): boolean {
  return output.split('\n').some((line) => line.includes(`"actionId":"act_${id}"`) && line.includes('action completed: tokens distributed'))
}

for (const name of ['fastify', 'express', 'node-http', 'fetch']) {
  test(`examples/${name}: SIGTERM while a slow handler runs lets it finish, then exits 0`, async (t) => {
    const example = await startExample(t, name, { SLOW_HANDLER_MS: String(SLOW_HANDLER_MS) })
    t.match(example.output(), /curl -i -X POST/, 'prints a ready curl line')
    t.match(example.output(), /whsec_local_development_only/, 'says it uses the embedded development secret')

    const id = `evt_sigterm_${name.replace('-', '_')}`
    t.equal(await deliver(example.url, id), 200, 'the delivery is accepted')
    t.notOk(handlerFinished(example.output(), id), 'the handler is still running when the signal is sent')
    example.kill('SIGTERM')
    // Issue 21.11: while it drains, the readiness probe says so (not a fixed 200).
    const health = await healthWhileClosing(example)
    t.equal(health?.status, 503, '/health answers 503 while the receiver closes')
    t.match(health?.body, { status: 'closing' })
    const code = await example.exit
    t.ok(handlerFinished(example.output(), id), 'the handler finished before the process exited')
    t.match(example.output(), /closing: refusing new deliveries/, 'the shutdown is logged')
    t.equal(code, 0, 'exit code 0')
  })
}

/** Polls the internal /health from the signal until it answers 503 or the process exits. */
async function healthWhileClosing (example: Example): Promise<{ status: number, body: unknown } | undefined> {
  let exited = false
  void example.exit.then(() => { exited = true })
  let last: { status: number, body: unknown } | undefined
  while (!exited) {
    try {
      const response = await fetch(`${example.internal}/health`)
      last = { status: response.status, body: await response.json() }
      if (response.status === 503) return last
    } catch {
      return last
    }
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  return last
}

for (const name of ['fastify', 'express', 'node-http', 'fetch']) {
  test(`examples/${name} serves /health and /metrics on the internal port only, with named handlers`, async (t) => {
    const example = await startExample(t, name)
    t.not(new URL(example.internal).port, new URL(example.url).port, 'a port of its own')
    t.equal(await deliver(example.url, `evt_metrics_${name.replace('-', '_')}`), 200)
    const deadline = Date.now() + 10_000
    let metrics = ''
    while (Date.now() < deadline && !/sir_webhooks_handler_duration_count\{[^}]*sir_webhooks_result="success"/.test(metrics)) {
      metrics = await (await fetch(`${example.internal}/metrics`)).text()
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    t.match(metrics, /^sir_webhooks_deliveries_total\{sir_webhooks_outcome="accepted",otel_scope_name="sir-webhooks"\} 1$/m, '/metrics serves the receiver\'s counters')
    // Issue 21.8: each handler carries its own name, not the shared "anonymous".
    t.match(metrics, /^sir_webhooks_handler_duration_count\{[^}]*sir_webhooks_handler="logCompletedAction"[^}]*sir_webhooks_result="success"[^}]*\} 1$/m)
    t.notMatch(metrics, /sir_webhooks_handler="anonymous/, 'no unnamed handler in the example')
    const health = await fetch(`${example.internal}/health`)
    t.equal(health.status, 200)
    t.match(await health.json(), { status: 'ok', reasons: [], stats: { deliveries: { accepted: 1 } } })
    for (const path of ['/health', '/metrics']) {
      const onPublicPort = await fetch(`${new URL(example.url).origin}${path}`)
      await onPublicPort.arrayBuffer()
      t.equal(onPublicPort.status, 404, `${path} is not served on the webhook port`)
    }
    example.kill('SIGTERM')
    t.equal(await example.exit, 0)
  })
}
