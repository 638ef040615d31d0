// Ordering across processes on one Redis: two worker processes (fixtures/bullmq-ordered-worker.ts)
// run 2 000 events over 50 keys while this process accepts them; one worker is
// SIGKILLed midway and started again. Every run is a line in one file, in the real
// order of the writes: per key they never overlap, the events accepted before any
// ran run oldest createdAt first, the stale flags are exactly the late ones,
// nothing is lost and only a run cut off by the kill runs again.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { bullmqInbox } from '../src/bullmq/inbox.js'
import { seededRandom } from '../src/testing/random.js'
import { redisForTests } from './helpers/redis.js'
import { tempDir } from './inbox-contract/scenarios.js'
import { delivery, receiver, until } from './inbox-contract/support.js'

interface RunLine { at: 'start' | 'end', id: string, key: string, createdAt: number, pid: number, stale: boolean, newest: number | undefined }

const script = fileURLToPath(new URL('./fixtures/bullmq-ordered-worker.ts', import.meta.url))
const loaderArgs = process.execArgv.filter((arg) => arg.includes('@tapjs/typescript'))

async function startWorker (env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...loaderArgs, script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
  const killOnExit = (): void => { child.kill('SIGKILL') }
  process.once('exit', killOnExit)
  child.once('exit', () => { process.removeListener('exit', killOnExit) })
  await new Promise<void>((resolve, reject) => {
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => { if (chunk.includes('ready')) resolve() })
    child.once('exit', (code, signal) => { reject(new Error(`the worker exited before it was ready (${code}, ${signal})`)) })
  })
  return child
}

async function stop (child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill(signal)
  await exited
}

function readRuns (file: string): RunLine[] {
  if (!existsSync(file)) return []
  return readFileSync(file, 'utf8').split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as RunLine)
}

const redis = await redisForTests(t)
if (redis.url === undefined) {
  t.plan(0, `BullMQ multi-process ordering skipped: no Redis (${redis.reason})`)
} else {
  const { connection } = redis
  const redisUrl = redis.url
  const seed = process.env.ORDERING_SEED === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.ORDERING_SEED)
  t.test(`bullmq: two worker processes, 2 000 events over 50 keys, one SIGKILLed midway and restarted (seed ${seed}; replay with ORDERING_SEED=${seed})`, async (t) => {
    const random = seededRandom(seed)
    const queueName = `order-mp-${randomUUID()}`
    const runsFile = join(tempDir(t), 'runs.jsonl')
    const env = { SIR_REDIS_URL: redisUrl, SIR_QUEUE: queueName, SIR_RUNS: runsFile }
    // Accepts only: a receiver without handlers takes no jobs, the workers run them.
    const accepter = receiver(bullmqInbox({ connection, queueName }), { ordering: { key: (event) => (event.data as { orderKey?: string }).orderKey } })
    t.teardown(() => accepter.close())
    const base = Date.parse('2026-05-10T09:00:00Z')
    const events = Array.from({ length: 2000 }, (_, index) => ({
      id: `evt_mp_${seed}_${index}`,
      key: `k${Math.floor(random() * 50)}`,
      // Whole seconds over ten minutes: ties of createdAt happen.
      createdAt: base + Math.floor(random() * 600) * 1000
    }))
    for (let index = events.length - 1; index > 0; index -= 1) {
      const other = Math.floor(random() * (index + 1))
      ;[events[index], events[other]] = [events[other] as typeof events[number], events[index] as typeof events[number]]
    }
    const accept = async (batch: typeof events): Promise<void> => {
      for (let start = 0; start < batch.length; start += 25) {
        const answers = await Promise.all(batch.slice(start, start + 25).map(async (planned) => await accepter.receive(delivery({
          id: planned.id, type: 'action.completed', createdAt: new Date(planned.createdAt).toISOString(), data: { actionId: planned.id, orderKey: planned.key }
        }))))
        if (answers.some((answer) => answer.status !== 200)) throw new Error(`an accept was refused: ${JSON.stringify(answers.map((answer) => answer.status))}`)
      }
    }
    // The first 1 200 wait before anything runs: they must run exactly oldest first.
    const early = events.slice(0, 1200)
    await accept(early)
    const workers: ChildProcess[] = await Promise.all([startWorker(env), startWorker(env)])
    t.teardown(async () => { await Promise.all(workers.map(async (worker) => { await stop(worker, 'SIGKILL') })) })
    // The other 800 while the workers run: some arrive after newer events of their key ran.
    const late = accept(events.slice(1200))
    await until(() => readRuns(runsFile).filter((line) => line.at === 'end').length >= 400, 'the workers to run 400 events', 60_000)
    const doomed = workers[0] as ChildProcess
    await stop(doomed, 'SIGKILL')
    workers.push(await startWorker(env))
    await late
    await until(() => new Set(readRuns(runsFile).filter((line) => line.at === 'end').map((line) => line.id)).size === events.length, 'every event to run', 90_000)
    const runs = readRuns(runsFile)

    // Nothing lost; handled twice only where a run was cut off by the kill.
    const ends = new Map<string, number>()
    for (const line of runs) if (line.at === 'end') ends.set(line.id, (ends.get(line.id) ?? 0) + 1)
    t.equal(ends.size, events.length, 'every event was handled')
    const killedIds = new Set(runs.filter((line) => line.pid === doomed.pid && line.at === 'start').map((line) => line.id))
    const twice = [...ends].filter(([id, count]) => count > 1 && !killedIds.has(id))
    t.same(twice, [], 'no event handled twice except one the killed worker was running')
    const byPid = (pid: number | undefined): number => runs.filter((line) => line.at === 'end' && line.pid === pid).length
    t.ok(byPid(doomed.pid) > 0 && byPid(workers[1]?.pid) > 0, `both workers ran events before the kill (killed ${byPid(doomed.pid)}, other ${byPid(workers[1]?.pid)}, replacement ${byPid(workers[2]?.pid)})`)

    const earlyIds = new Set(early.map((planned) => planned.id))
    const failures: string[] = []
    for (let key = 0; key < 50; key += 1) {
      const lines = runs.filter((line) => line.key === `k${key}`)
      let open: RunLine | undefined
      let newest: number | undefined
      let lastEarly: RunLine | undefined
      const started = new Set<string>()
      for (const line of lines) {
        if (line.at === 'start') {
          // A start while a run of the key is open: an overlap, unless the open run's process was killed (it never ended).
          if (open !== undefined && open.pid !== doomed.pid) failures.push(`${line.id} started while ${open.id} of k${key} ran`)
          open = line
          started.add(line.id)
          const stale = newest !== undefined && line.createdAt < newest
          if (line.stale !== stale) failures.push(`${line.id} of k${key} was told stale ${line.stale}, expected ${stale}`)
          // A second run of an event (the kill cut off its first, or came between its end and
          // BullMQ marking it done) is at-least-once, not order: it runs where it is taken back.
          if (earlyIds.has(line.id) && !started.has(line.id)) {
            // Among the events accepted before any ran: oldest createdAt first (ties: either, by acceptance).
            if (lastEarly !== undefined && lastEarly.id !== line.id && lastEarly.createdAt > line.createdAt) failures.push(`${line.id} of k${key} ran after ${lastEarly.id}, newer`)
            lastEarly = line
          }
        } else {
          if (open?.id !== line.id) failures.push(`${line.id} of k${key} ended, but ${open?.id ?? 'nothing'} was running`)
          open = undefined
          newest = Math.max(newest ?? -Infinity, line.createdAt)
        }
      }
    }
    t.same(failures.slice(0, 10), [], `per key: no overlap, oldest first, stale flags exact (${runs.length} lines, ${runs.filter((line) => line.stale).length} stale runs)`)

    // The restarted worker alone now: it takes jobs like the others.
    await stop(workers[1] as ChildProcess, 'SIGTERM')
    const after = Array.from({ length: 20 }, (_, index) => ({ id: `evt_mp_${seed}_after_${index}`, key: 'kz', createdAt: base + index * 1000 }))
    await accept(after)
    await until(() => readRuns(runsFile).filter((line) => line.at === 'end' && line.key === 'kz').length === 20, 'the restarted worker to run 20 more', 60_000)
    const restarted = readRuns(runsFile).filter((line) => line.at === 'end' && line.key === 'kz')
    t.ok(restarted.every((line) => line.pid === workers[2]?.pid), 'the restarted worker ran them')
  })
}
