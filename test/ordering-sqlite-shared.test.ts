// Ordering across two receiver processes on one SQLite file, one SIGKILLed
// midway and restarted (issue 23, "multi-process"): 2 000 events over 50 keys.
// Every run is a line appended to one file by both processes, so the file's
// line order is the order runs happened in; per key, no two runs overlap, the
// events were handled oldest createdAt first across the kill, the late ones are
// exactly the stale ones, nothing is lost, and nothing is handled twice except
// what a SIGKILL allows (a run whose end was written and whose outcome was not).
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { seededRandom } from '../src/testing/random.js'
import { tempDir } from './inbox-contract/scenarios.js'
import { until } from './inbox-contract/support.js'
import { FlowChild } from './helpers/flow-child.js'

const fixture = fileURLToPath(new URL('./fixtures/ordering-receiver.ts', import.meta.url))
const KEYS = 50
const PER_KEY = 40
const BASE = Date.parse('2026-05-10T09:00:00Z')

interface Planned { id: string, key: string, createdAt: number }
type Line = { kind: 'start', id: string, key: string, pid: number, attempt: number, stale: boolean, newest: number | undefined }
  | { kind: 'end', id: string, key: string, pid: number, ok: boolean }
  | { kind: 'killed', pid: number }

function readLines (file: string): Line[] {
  let text: string
  try { text = readFileSync(file, 'utf8') } catch { return [] }
  return text.split('\n').filter((line) => line !== '').map((line): Line => {
    const [kind, a = '', b = '', c = '', d = '', e = '', f = ''] = line.split(' ')
    if (kind === 'killed') return { kind, pid: Number(a) }
    if (kind === 'start') return { kind, id: a, key: b, pid: Number(c), attempt: Number(d), stale: e === 'true', newest: f === '-' ? undefined : Number(f) }
    return { kind: 'end', id: a, key: b, pid: Number(c), ok: d === 'ok' }
  })
}

t.test('sqlite: two processes on one file, one SIGKILLed midway and restarted: 2 000 events over 50 keys stay serial per key, oldest first, stale exactly when late', async (t) => {
  const seed = process.env.ORDERING_SEED === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.ORDERING_SEED)
  t.comment(`seed ${seed}; replay with ORDERING_SEED=${seed}`)
  const random = seededRandom(seed)
  const dir = tempDir(t)
  const runsFile = join(dir, 'runs.txt')
  // Per key, createdAt one second apart; two of each key's events (not its newest) are held back and delivered last: late, so stale.
  const events: Planned[] = []
  for (let key = 0; key < KEYS; key += 1) {
    for (let index = 0; index < PER_KEY; index += 1) events.push({ id: `evt_mp_${key}_${index}`, key: `k${key}`, createdAt: BASE + index * 1000 })
  }
  const late = events.filter((_, index) => index % PER_KEY === 7 || index % PER_KEY === 23)
  const onTime = events.filter((planned) => !late.includes(planned))
  for (let index = onTime.length - 1; index > 0; index -= 1) {
    const other = Math.floor(random() * (index + 1))
    ;[onTime[index], onTime[other]] = [onTime[other] as Planned, onTime[index] as Planned]
  }
  const plan = [...onTime, ...late]
  const planFile = join(dir, 'plan.json')
  writeFileSync(planFile, JSON.stringify(plan))
  const failOnce = onTime.filter(() => random() < 0.05).map((planned) => planned.id)
  const env = { SIR_DB: join(dir, 'inbox.db'), SIR_RUNS: runsFile, SIR_PLAN: planFile, SIR_FAIL_ONCE: failOnce.join(','), SIR_LEASE_MS: '2000' }
  const a = new FlowChild(t, env, fixture)
  let b = new FlowChild(t, env, fixture)
  await Promise.all([a.ready, b.ready])

  // Paused while the on-time events are delivered, so that every one is waiting when the keys start: "oldest first" is then exact.
  // Both asked: the other process reads a pause from the file at its next poll, and with accepts answered after an fsync
  // off the event loop its claims no longer happen to share the accepts' transactions (which take no key) until then.
  t.same(await Promise.all([a.ask('pause'), b.ask('pause')]), ['ok', 'ok'])
  const half = Math.floor(onTime.length / 2)
  const [fromA, fromB] = await Promise.all([a.ask(`deliver 0 ${half}`), b.ask(`deliver ${half} ${onTime.length}`)])
  t.equal(Number(fromA) + Number(fromB), onTime.length, 'every on-time event answered 200')
  t.equal(await a.ask('resume'), 'ok')
  const ended = (): Set<string> => new Set(readLines(runsFile).flatMap((line) => line.kind === 'end' && line.ok ? [line.id] : []))
  await until(() => ended().size >= onTime.length / 3, 'a third of the events to be handled', 60_000)
  const killed = b.child.pid as number
  await b.stop('SIGKILL')
  writeFileSync(runsFile, `killed ${killed}\n`, { flag: 'a' })
  b = new FlowChild(t, env, fixture)
  await b.ready
  await until(() => ended().size === onTime.length, 'every on-time event to be handled, across the kill', 90_000)
  t.equal(await b.ask(`deliver ${onTime.length} ${plan.length}`), String(late.length), 'the late events answered 200')
  await until(() => ended().size === plan.length, 'the late events to be handled', 60_000)

  const lines = readLines(runsFile)
  const createdAt = new Map(plan.map((planned) => [planned.id, planned.createdAt]))
  const live = new Map<string, { id: string, pid: number }>()
  const handled = new Map<string, string[]>()
  const endsById = new Map<string, number>()
  const newestEnded = new Map<string, number>()
  // Per key, the handled events whose end line the killed process wrote: its outcome may not have been committed.
  const endedByKilled = new Map<string, number>()
  let overlaps = 0
  let wrongFlags = 0
  let twiceAfterKill = 0
  for (const line of lines) {
    if (line.kind === 'killed') {
      // A run the kill cut short ends here: its event runs again once the process is gone.
      for (const [key, run] of live) if (run.pid === line.pid) live.delete(key)
      continue
    }
    if (line.kind === 'start') {
      if (live.has(line.key)) {
        overlaps += 1
        t.fail(`${line.id} started while ${live.get(line.key)?.id} of ${line.key} ran`)
      }
      live.set(line.key, { id: line.id, pid: line.pid })
      const newest = newestEnded.get(line.key)
      const expectStale = newest !== undefined && (createdAt.get(line.id) as number) < newest
      if (line.newest !== newest || line.stale !== expectStale) {
        // A SIGKILL can land between a run's end line and its outcome's commit: the store's newest is then one handled event behind.
        wrongFlags += 1
        if (!endedByKilled.has(line.key)) t.fail(`${line.id} of ${line.key} was told stale ${line.stale}, newest ${line.newest}; the runs before it say ${expectStale}, ${newest}`)
      }
      continue
    }
    if (live.get(line.key)?.id === line.id) live.delete(line.key)
    if (!line.ok) continue
    const times = (endsById.get(line.id) ?? 0) + 1
    endsById.set(line.id, times)
    if (times > 1) {
      twiceAfterKill += 1
      continue
    }
    if (line.pid === killed) endedByKilled.set(line.key, (endedByKilled.get(line.key) ?? 0) + 1)
    handled.set(line.key, [...(handled.get(line.key) ?? []), line.id])
    newestEnded.set(line.key, Math.max(newestEnded.get(line.key) ?? -Infinity, createdAt.get(line.id) as number))
  }
  t.equal(overlaps, 0, 'no two runs of one key overlapped, in either process, across the kill')
  t.ok(wrongFlags <= 8, `stale flags and newestHandledAt exactly as the runs before them say, except ${wrongFlags} run(s) after a run the kill cut between its end and its record`)
  t.ok(twiceAfterKill <= 8, `${twiceAfterKill} events handled again after the kill (at most the killed process's 8 slots: at-least-once), none otherwise`)
  const lost = plan.filter((planned) => !endsById.has(planned.id))
  t.same(lost.map((planned) => planned.id), [], 'nothing lost')
  let outOfOrder = 0
  for (const [key, ids] of handled) {
    const onTimeIds = ids.filter((id) => !late.some((planned) => planned.id === id))
    const times = onTimeIds.map((id) => createdAt.get(id) as number)
    if (times.some((time, index) => index > 0 && time < (times[index - 1] as number))) {
      outOfOrder += 1
      t.fail(`${key} handled out of createdAt order: ${onTimeIds.join(' ')}`)
    }
  }
  t.equal(outOfOrder, 0, 'every key handled its on-time events oldest createdAt first')
  const staleRuns = new Set(lines.flatMap((line) => line.kind === 'start' && line.stale ? [line.id] : []))
  t.same([...staleRuns].sort(), late.map((planned) => planned.id).sort(), 'exactly the late events ran flagged stale')
  t.ok(lines.some((line) => line.kind === 'start' && line.pid === killed), 'the killed process had run some')
})
