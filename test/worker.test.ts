import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { Webhooks, type Inbox } from '../src/index.js'
import { bullmqInbox } from '../src/bullmq/inbox.js'
import { nodeListener } from '../src/node/listener.js'
import { sqliteInbox } from '../src/sqlite/inbox.js'
import { SECRET, actionCompleted, eventually, post, signedRequest } from './helpers/deliveries.js'
import { captureLogs } from './helpers/logs.js'
import { redisForTests } from './helpers/redis.js'
import { serveForTest } from './helpers/serve.js'
import { tempDir } from './inbox-contract/scenarios.js'

// docs/deployment.md, "Worker-only processes": a receiver with handlers and no HTTP
// adapter, on the same durable inbox as the web process, runs the events the web
// process accepted. Here the web process can run one event at a time and holds it,
// so every other event it accepts can only run in the worker.

const worker = fileURLToPath(new URL('./fixtures/worker.ts', import.meta.url))
const loaderArgs = process.execArgv.filter((arg) => arg.includes('@tapjs/typescript'))

interface Store { name: string, inbox: () => Inbox, env: Record<string, string> }

function gate (): { promise: Promise<void>, open: () => void } {
  let open = (): void => {}
  const promise = new Promise<void>((resolve) => { open = resolve })
  return { promise, open }
}

function handledLines (file: string): Array<{ id: string, pid: number }> {
  if (!existsSync(file)) return []
  return readFileSync(file, 'utf8').split('\n').filter((line) => line !== '').map((line) => {
    const [id = '', pid = '0'] = line.split(' ')
    return { id, pid: Number(pid) }
  })
}

async function workerOnlyScenario (t: Test, store: Store, dir: string): Promise<void> {
  const handledFile = join(dir, 'handled.txt')
  const child = spawn(process.execPath, [...loaderArgs, worker], {
    env: { ...process.env, ...store.env, SIR_SECRET: SECRET, SIR_HANDLED: handledFile },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => { resolve(code) }))
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error('the worker did not start')) }, 30_000)
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { if (chunk.includes('ready')) { clearTimeout(timer); resolve() } })
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`the worker exited (${String(code)}) before it was ready`)) })
  })

  // The web process: serves HTTP, runs at most one event, and holds it.
  const logs = captureLogs()
  const web = new Webhooks({ secret: SECRET, logger: logs.logger, concurrency: 1, inbox: store.inbox() })
  const held = gate()
  const ranInWeb: string[] = []
  web.on('action.completed', async function creditPartner (event) {
    ranInWeb.push(event.id)
    await held.promise
  })
  const base = await serveForTest(t, createServer(nodeListener(web, { path: '/webhooks/sir' })), web)
  t.teardown(() => { held.open() })

  const events = Array.from({ length: 5 }, () => actionCompleted())
  for (const event of events) t.equal((await post(`${base}/webhooks/sir`, signedRequest(event))).status, 200, 'the web process accepts')

  await eventually(() => handledLines(handledFile).length >= events.length - 1, 20_000, 'the worker to run the events the web process could not')
  t.ok(ranInWeb.length <= 1, 'the web process ran at most the one event it holds')
  t.ok(handledLines(handledFile).every((line) => line.pid === child.pid), 'every event in the file ran in the worker')

  held.open()
  await eventually(() => new Set([...ranInWeb, ...handledLines(handledFile).map((line) => line.id)]).size === events.length, 20_000, 'every event to run')
  const all = [...ranInWeb, ...handledLines(handledFile).map((line) => line.id)]
  t.same([...all].sort(), events.map((event) => event.id).sort(), 'each accepted event ran exactly once, in one process or the other')

  t.equal(child.exitCode, null, 'the worker is still up, with no server to hold it open')
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'the worker closes on SIGTERM and exits 0')
}

t.test('sqlite: a worker-only process runs the events a web process accepted into the shared file', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'inbox.db')
  await workerOnlyScenario(t, { name: 'sqlite', inbox: () => sqliteInbox({ path, pollIntervalMs: 50 }), env: { SIR_STORE: 'sqlite', SIR_DB: path } }, dir)
})

t.test('bullmq: a worker-only process runs the events a web process accepted into the shared queue', async (t) => {
  const redis = await redisForTests(t)
  if (redis.url === undefined) {
    t.plan(0, `skipped: no Redis (${redis.reason})`)
    return
  }
  const queueName = `worker-${randomUUID()}`
  const { connection, url } = redis
  await workerOnlyScenario(t, { name: 'bullmq', inbox: () => bullmqInbox({ connection, queueName }), env: { SIR_STORE: 'bullmq', SIR_REDIS_URL: url, SIR_QUEUE: queueName } }, tempDir(t))
})
