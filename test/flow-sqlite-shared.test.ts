// Flow control shared by two receiver processes on one SQLite file: one rate,
// one pause and one concurrency for both, and a crashed process's slot freed.
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { tempDir } from './inbox-contract/scenarios.js'
import { sleep, until } from './inbox-contract/support.js'
import { FlowChild, readRuns, type Run } from './helpers/flow-child.js'

/** `onlyA`: environment for the first process only. */
function pair (t: Test, env: Record<string, string>, onlyA: Record<string, string> = {}): { a: FlowChild, b: FlowChild, runs: () => Run[] } {
  const dir = tempDir(t)
  const file = join(dir, 'runs.txt')
  const shared = { SIR_DB: join(dir, 'inbox.db'), SIR_RUNS: file, ...env }
  return { a: new FlowChild(t, { ...shared, ...onlyA }), b: new FlowChild(t, shared), runs: () => readRuns(file) }
}

t.test('sqlite: a handler rated 20/s runs at 20/s across two processes on one file together', async (t) => {
  const { a, b, runs } = pair(t, { SIR_LIMITS: JSON.stringify({ rate: { perSecond: 20, burst: 1 } }) })
  await Promise.all([a.ready, b.ready])
  const ids = Array.from({ length: 61 }, (_, index) => `evt_rate_${index}`)
  for (const [index, id] of ids.entries()) t.equal(await (index % 2 === 0 ? a : b).ask(`deliver ${id}`), '200')
  await until(() => runs().filter((run) => run.kind === 'end').length === ids.length, 'every event to run', 30_000)
  const starts = runs().filter((run) => run.kind === 'start').map((run) => run.at).sort((x, y) => x - y)
  const rate = (starts.length - 1) / (((starts.at(-1) ?? 0) - (starts[0] ?? 0)) / 1000)
  // 60 intervals of 50 ms: 3 s. A bucket per process would give about 40/s; wide bounds for a loaded machine.
  t.ok(rate >= 12 && rate <= 28, `measured ${rate.toFixed(2)} runs/s over both processes for one limit of 20/s`)
  const inAnySecond = Math.max(...starts.map((start) => starts.filter((at) => at >= start && at < start + 1000).length))
  t.ok(inAnySecond <= 30, `${inAnySecond} runs in the busiest second (limit 20/s, burst 1)`)
  const pids = new Set(runs().map((run) => run.pid))
  t.equal(pids.size, 2, 'both processes ran some')
})

t.test('sqlite: pause() in one process holds the other\'s handler while its deliveries are answered 200; resume() drains', async (t) => {
  const { a, b, runs } = pair(t, {})
  await Promise.all([a.ready, b.ready])
  t.equal(await a.ask('pause'), 'ok')
  await until(async () => await b.ask('health') === 'paused', 'the other process to see the pause', 5_000)
  for (let index = 0; index < 6; index++) t.equal(await b.ask(`deliver evt_paused_${index}`), '200', 'answered 200 while paused')
  await sleep(1_000)
  t.same(runs(), [], 'nothing ran in either process while paused')
  t.equal(await b.ask('health'), 'paused')
  t.equal(await a.ask('resume'), 'ok')
  await until(() => runs().filter((run) => run.kind === 'end').length === 6, 'resume() to drain', 10_000)
  await until(async () => await b.ask('health') === 'ok', 'the other process to see the resume', 5_000)
  // Paused by name in one process: the other's runs of that handler wait, and are woken by its resume.
  t.equal(await b.ask('pause callPartner'), 'ok')
  await until(async () => await a.ask('health') === 'paused', 'the pause by name to be seen', 5_000)
  t.equal(await a.ask('deliver evt_paused_by_name'), '200')
  await sleep(800)
  t.notOk(runs().some((run) => run.id === 'evt_paused_by_name'), 'the paused handler did not run')
  const resumedAt = Date.now()
  t.equal(await b.ask('resume callPartner'), 'ok')
  await until(() => runs().some((run) => run.id === 'evt_paused_by_name'), 'the run after resume', 10_000)
  const ranAt = runs().find((run) => run.id === 'evt_paused_by_name')?.at ?? 0
  t.ok(ranAt - resumedAt < 5_000, `ran ${ranAt - resumedAt} ms after the resume, not after the pause's 5-minute wait`)
})

/** The most runs of the handler in progress at one moment, from the start and end lines of both processes. */
function mostAtOnce (runs: Run[]): number {
  let active = 0
  let most = 0
  for (const run of [...runs].sort((x, y) => x.at - y.at || (x.kind === 'end' ? -1 : 1))) {
    active += run.kind === 'start' ? 1 : -1
    most = Math.max(most, active)
  }
  return most
}

t.test('sqlite: concurrency 1 is shared by two processes: never two runs at once', async (t) => {
  const { a, b, runs } = pair(t, { SIR_LIMITS: JSON.stringify({ concurrency: 1 }), SIR_HANDLER_MS: '40' })
  await Promise.all([a.ready, b.ready])
  const ids = Array.from({ length: 16 }, (_, index) => `evt_conc_${index}`)
  await Promise.all(ids.map(async (id, index) => { t.equal(await (index % 2 === 0 ? a : b).ask(`deliver ${id}`), '200') }))
  await until(() => runs().filter((run) => run.kind === 'end').length === ids.length, 'every event to run', 30_000)
  // Half the events were accepted, and first claimed, by each process: with a count per process, they would overlap.
  t.equal(mostAtOnce(runs()), 1, 'never two runs at once across the processes')
})

t.test('sqlite: a process killed during a run does not hold its concurrency slot past its lease', async (t) => {
  // Slow in the process that is killed; the other runs it at once when it takes the event over.
  // The other starts once the slow run has: its poll could otherwise claim the event first, while a's accept waits for its WAL fsync.
  const dir = tempDir(t)
  const file = join(dir, 'runs.txt')
  const shared = { SIR_DB: join(dir, 'inbox.db'), SIR_RUNS: file, SIR_LIMITS: JSON.stringify({ concurrency: 1 }), SIR_LEASE_MS: '1000' }
  const runs = (): Run[] => readRuns(file)
  const a = new FlowChild(t, { ...shared, SIR_SLOW_MS: '60000' })
  await a.ready
  t.equal(await a.ask('deliver slow_1'), '200')
  await until(() => runs().some((run) => run.id === 'slow_1'), 'the slow run to start', 10_000)
  const doomed = runs().find((run) => run.id === 'slow_1')?.pid
  const b = new FlowChild(t, shared)
  await b.ready
  await a.stop('SIGKILL')
  for (let index = 0; index < 3; index++) t.equal(await b.ask(`deliver evt_after_${index}`), '200')
  await until(() => runs().filter((run) => run.kind === 'end' && run.id.startsWith('evt_after')).length === 3, 'the events to run once the slot lapses', 20_000)
  t.ok(runs().every((run) => !run.id.startsWith('evt_after') || run.pid !== doomed), 'run by the process that lives')
})
