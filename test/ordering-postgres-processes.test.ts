// Ordering across processes on one Postgres schema (issue 23): an accepting
// receiver in this process and two worker processes (test/fixtures/ordered-worker.ts),
// one SIGKILLed midway and started again. Every handler run is recorded in a
// table on the server's clock; the effects go through `transaction`.
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import t, { type Test } from 'tap'
import { Webhooks } from '../src/index.js'
import { postgresInbox, type PostgresInbox } from '../src/postgres/inbox.js'
import { seededRandom } from '../src/testing/random.js'
import { freshSchema, postgresForTests } from './helpers/postgres.js'
import { captureLogger, delivery, SECRET, until } from './inbox-contract/support.js'

const script = fileURLToPath(new URL('./fixtures/ordered-worker.ts', import.meta.url))
const loaderArgs = process.execArgv.filter((arg) => arg.includes('@tapjs/typescript'))

interface Worker { child: ChildProcess, exited: Promise<void> }

async function startWorker (t: Test, env: Record<string, string>): Promise<Worker> {
  const child = spawn(process.execPath, [...loaderArgs, script], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] })
  const killOnExit = (): void => { child.kill('SIGKILL') }
  process.once('exit', killOnExit)
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { process.removeListener('exit', killOnExit); resolve() }) })
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.stdin?.end()
    const stuck = setTimeout(() => { child.kill('SIGKILL') }, 10_000)
    await exited
    clearTimeout(stuck)
  })
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => { reject(new Error(`the ordered worker exited before it was ready (code ${code})`)) })
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => { if (chunk.includes('ready')) resolve() })
  })
  return { child, exited }
}

interface RunRow {
  event_id: string
  key: string
  created_at: string
  stale: boolean
  newest_handled: string | null
  pid: number
  started: Date
  ended: Date | null
}

const postgres = await postgresForTests(t)
if (postgres.url === undefined) {
  t.plan(0, `Postgres ordering across processes skipped: ${postgres.reason}`)
} else {
  const connectionString = postgres.url

  t.test('postgres: 2 000 events over 50 keys, two worker processes, one SIGKILLed midway and restarted: runs of a key never overlap, oldest first but for stale ones, stale flags exact, each event handled once', async (t) => {
    const seed = process.env.ORDERING_SEED === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.ORDERING_SEED)
    t.comment(`seed ${seed} (replay with ORDERING_SEED=${seed})`)
    const random = seededRandom(seed)
    const db = new pg.Pool({ connectionString, max: 2 })
    t.teardown(() => db.end())
    const schema = freshSchema('ord_procs')
    const runsTable = `${schema}_runs`
    const effectsTable = `${schema}_effects`
    await db.query(`CREATE TABLE ${runsTable} (run serial PRIMARY KEY, event_id text NOT NULL, key text, created_at bigint NOT NULL, attempt integer NOT NULL,
      stale boolean, newest_handled bigint, pid integer NOT NULL, started timestamptz NOT NULL, ended timestamptz)`)
    // No unique constraint: an effect committed twice would leave two rows.
    await db.query(`CREATE TABLE ${effectsTable} (event_id text NOT NULL)`)
    t.teardown(() => db.query(`DROP TABLE IF EXISTS ${runsTable}, ${effectsTable}; DROP SCHEMA IF EXISTS ${schema} CASCADE`))

    // This process only accepts (it has no handlers): the workers run everything.
    const accepting = new Webhooks<PostgresInbox>({
      secret: SECRET,
      logger: captureLogger(),
      inbox: postgresInbox({ connectionString, schema, pollIntervalMs: 100 }),
      ordering: { key: (event) => (event.data as { orderKey?: string }).orderKey }
    })
    t.teardown(() => accepting.close())
    const env = { SIR_POSTGRES_URL: connectionString, SIR_SCHEMA: schema, SIR_RUNS_TABLE: runsTable, SIR_EFFECTS_TABLE: effectsTable, SIR_HANDLER_MS: '20' }
    const workers = [await startWorker(t, env), await startWorker(t, env)]

    const count = 2000
    const base = Date.parse('2026-05-10T09:00:00Z')
    // createdAt spread over 40 s per key, delivered in a scrambled order: late ones come in while their key runs.
    const events = Array.from({ length: count }, (_, index) => ({ id: `evt_procs_${index}`, key: `key_${index % 50}`, createdAt: base + Math.floor(random() * 40) * 1000 }))
    for (let index = events.length - 1; index > 0; index -= 1) {
      const other = Math.floor(random() * (index + 1))
      ;[events[index], events[other]] = [events[other]!, events[index]!]
    }
    // Bursts of 200, four events a key on average: a key's later events arrive while its earlier ones run.
    const BURST = 200
    // When each event's 200 had been answered (its row committed), on the server's clock.
    const acceptedBy = new Map<string, number>()
    let killedAt: Date | undefined
    let killedPid: number | undefined
    for (let from = 0; from < count; from += BURST) {
      const answers = await Promise.all(events.slice(from, from + BURST).map(async (planned) => await accepting.receive(delivery({
        id: planned.id, type: 'action.completed', createdAt: new Date(planned.createdAt).toISOString(), data: { actionId: planned.id, orderKey: planned.key }
      }))))
      t.ok(answers.every((answer) => answer.status === 200), `deliveries ${from} to ${from + BURST - 1} answered 200`)
      const now = (await db.query<{ now: Date }>('SELECT clock_timestamp() AS now')).rows[0]!.now.getTime()
      for (const planned of events.slice(from, from + BURST)) acceptedBy.set(planned.id, now)
      if (from === 1000) {
        // Midway, with runs in flight: the first worker dies; a new one takes its place.
        await until(async () => (await db.query(`SELECT count(*)::integer AS n FROM ${runsTable} WHERE ended IS NULL AND pid = $1`, [workers[0]!.child.pid])).rows[0].n > 0, 'a run in flight on the first worker', 20_000)
        killedPid = workers[0]!.child.pid
        workers[0]!.child.kill('SIGKILL')
        await workers[0]!.exited
        killedAt = (await db.query<{ now: Date }>('SELECT clock_timestamp() AS now')).rows[0]!.now
        workers[0] = await startWorker(t, env)
      }
    }
    await until(async () => (await db.query(`SELECT count(*)::integer AS n FROM ${schema}.events WHERE state <> 'done'`)).rows[0].n === 0, 'every event to be done', 120_000)

    const effects = (await db.query<{ event_id: string, n: number }>(`SELECT event_id, count(*)::integer AS n FROM ${effectsTable} GROUP BY event_id`)).rows
    t.equal(effects.length, count, 'every event has its effect: nothing lost')
    t.same(effects.filter((row) => row.n !== 1), [], 'no effect committed twice: each event handled once')
    const runs = (await db.query<RunRow>(`SELECT * FROM ${runsTable} ORDER BY started, run`)).rows
    const cut = runs.filter((run) => run.ended === null)
    t.ok(cut.every((run) => run.pid === killedPid), `${cut.length} run(s) cut short, all on the killed worker`)
    // The run seen in flight may have written its end (not in its transaction) just
    // before the kill, its commit lost: then it shows as an event run once more.
    t.ok(cut.length > 0 || runs.length > count, `the kill cut a run short: ${cut.length} left without an end, ${runs.length - count} run again`)
    t.ok(runs.filter((run) => run.pid !== killedPid).length > 0, 'the other workers ran events too')

    const byKey = new Map<string, RunRow[]>()
    for (const run of runs) byKey.set(run.key, [...byKey.get(run.key) ?? [], run])
    const lastRun = new Map<string, RunRow>()
    for (const run of runs) lastRun.set(run.event_id, run)
    let stale = 0
    for (const [key, keyRuns] of byKey) {
      for (let index = 1; index < keyRuns.length; index += 1) {
        const previous = keyRuns[index - 1]!
        const end = previous.ended ?? killedAt!
        if (end >= keyRuns[index]!.started) {
          t.fail(`${key}: ${previous.event_id} (pid ${previous.pid}) and ${keyRuns[index]!.event_id} (pid ${keyRuns[index]!.pid}) overlapped`)
          return
        }
      }
      // Oldest first: no older event of the key, accepted well before a run started,
      // ran first after it. Well before: a run's key is taken at its batch's claim,
      // and a batch's later events start a while after it on a loaded machine.
      const firstRun = new Map<string, RunRow>()
      for (const run of keyRuns) if (!firstRun.has(run.event_id)) firstRun.set(run.event_id, run)
      for (const run of firstRun.values()) {
        const overtaken = [...firstRun.values()].find((other) => Number(other.created_at) < Number(run.created_at) &&
          acceptedBy.get(other.event_id)! + 2000 < run.started.getTime() && other.started > run.started)
        if (overtaken !== undefined) {
          t.fail(`${key}: ${run.event_id} ran before ${overtaken.event_id}, older and accepted before it started`)
          return
        }
      }
      // Handled: an event's last run. What a run is told is the newest createdAt handled before it started.
      let newest: number | undefined
      for (const run of keyRuns) {
        const createdAt = Number(run.created_at)
        const told = run.newest_handled === null ? undefined : Number(run.newest_handled)
        const expectStale = newest !== undefined && createdAt < newest
        if (told !== newest || run.stale !== expectStale) {
          t.fail(`${key}: ${run.event_id} was told stale ${run.stale}, newest ${told}; expected ${expectStale}, ${newest}`)
          return
        }
        if (run.stale) stale += 1
        if (lastRun.get(run.event_id) === run) newest = Math.max(newest ?? -Infinity, createdAt)
      }
    }
    t.pass(`${runs.length} runs over ${byKey.size} keys: none overlapped, none overtook an older accepted event, each told exactly the newest handled createdAt of its key (${stale} stale)`)
  })
}
