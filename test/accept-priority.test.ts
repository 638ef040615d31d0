// Handler work gives way to accepts (issue 22, item 1): the allowance of handler
// slots that the Postgres and BullMQ inboxes follow, on a controlled clock.
import t from 'tap'
import { AcceptPriority, START_LOW_BACKLOG, type AcceptPriorityOptions } from '../src/core/accept-priority.js'

function clocked (slots: number, options: AcceptPriorityOptions = {}): { priority: AcceptPriority, advance: (ms: number) => void, changes: number[] } {
  let now = 1_000_000
  const changes: number[] = []
  const priority = new AcceptPriority(slots, { now: () => now, onChange: (allowed) => { changes.push(allowed) }, ...options })
  t.teardown(() => { priority.stop() })
  return { priority, advance: (ms) => { now += ms }, changes }
}

/** One step of accepts (250 ms, one every 10 ms) with these waits, cycled. */
function step (priority: AcceptPriority, advance: (ms: number) => void, waits: number[]): void {
  for (let index = 0; index < 25; index++) {
    priority.accepted(waits[index % waits.length]!)
    advance(10)
  }
}

t.test('quick accepts leave every slot to the handlers', async (t) => {
  const { priority, advance, changes } = clocked(10)
  for (let index = 0; index < 8; index++) step(priority, advance, [3, 4, 2])
  t.equal(priority.allowed, 10)
  t.same(changes, [], 'and never changed it')
})

t.test('steps of slow accepts halve the slots down to a quarter of them; quick steps give them back one at a time', async (t) => {
  const { priority, advance, changes } = clocked(10)
  step(priority, advance, [2])
  step(priority, advance, [2, 40])
  step(priority, advance, [40])
  t.equal(priority.allowed, 5, 'halved once the slow step ended')
  step(priority, advance, [40])
  step(priority, advance, [40])
  step(priority, advance, [40])
  step(priority, advance, [2])
  t.equal(priority.allowed, 3, 'never below a quarter (rounded up): a backlog still drains, a paced handler keeps its pace')
  for (let index = 0; index < 12; index++) step(priority, advance, [2, 3])
  t.equal(priority.allowed, 10, 'back to every slot, a step at a time, never past it')
  t.same(changes.slice(0, 4), [5, 3, 4, 5], 'each change was told')
})

t.test('a slow wait now and then (an fsync that took longer) does not lower the slots', async (t) => {
  const { priority, advance } = clocked(10)
  // One slow wait in 25 per step: 4 %.
  for (let index = 0; index < 20; index++) step(priority, advance, [2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 60])
  t.equal(priority.allowed, 10)
})

t.test('the mark follows the store: a far database whose accepts always take 30 ms is not taken for a busy one', async (t) => {
  const { priority, advance } = clocked(10)
  for (let index = 0; index < 8; index++) step(priority, advance, [30, 31, 33, 34])
  t.equal(priority.allowed, 10, 'waits near the shortest of the last seconds are not slow')
  step(priority, advance, [90])
  step(priority, advance, [30])
  t.equal(priority.allowed, 5, 'a step of waits three times the usual is')
})

t.test('an accept still waiting far past the usual halves the slots before it is answered', async (t) => {
  let waitingSince: number | undefined
  const { priority, advance } = clocked(8, { waitingSince: () => waitingSince })
  step(priority, advance, [3])
  t.equal(priority.allowed, 8)
  waitingSince = 1_000_000 + 250
  advance(20)
  t.equal(priority.allowed, 8, 'not at 30 ms')
  advance(40)
  t.equal(priority.allowed, 4, 'at 70 ms')
  t.equal(priority.allowed, 4, 'and not again at once')
  advance(60)
  t.equal(priority.allowed, 2)
  advance(5_000)
  t.equal(priority.allowed, 2, 'a store that hangs keeps them low: no return to every slot while an accept waits')
  waitingSince = undefined
  t.equal(priority.allowed, 8, 'nothing waiting and no accept for idleMs: every slot')
})

t.test('with no accept for idleMs every slot comes back, by the getter and by the timer', async (t) => {
  const { priority, advance } = clocked(8, { idleMs: 2_000 })
  step(priority, advance, [2])
  step(priority, advance, [100])
  step(priority, advance, [100])
  t.equal(priority.allowed, 4)
  advance(1_980)
  t.equal(priority.allowed, 4, 'not before idleMs')
  advance(20)
  t.equal(priority.allowed, 8, 'then all of them')

  // The timer, on the real clock, for a worker that is told rather than asked.
  const told: number[] = []
  const real = new AcceptPriority(4, { idleMs: 50, stepMs: 10, onChange: (allowed) => { told.push(allowed) } })
  t.teardown(() => { real.stop() })
  real.accepted(1)
  await new Promise((resolve) => setTimeout(resolve, 15))
  real.accepted(500)
  await new Promise((resolve) => setTimeout(resolve, 15))
  real.accepted(500)
  t.same(told, [2], 'halved after the slow step')
  await new Promise((resolve) => setTimeout(resolve, 400))
  t.same(told, [2, 4], 'and told every slot once the accepts stopped')
})

t.test('a receiver started onto a large backlog begins with one slot and doubles it each step by the clock, with no accept needed', async (t) => {
  const { priority, advance, changes } = clocked(10)
  priority.startingOnto(START_LOW_BACKLOG - 1)
  t.equal(priority.allowed, 10, 'a smaller backlog starts with every slot')
  t.same(changes, [])
  priority.startingOnto(START_LOW_BACKLOG)
  t.equal(priority.allowed, 1, 'one slot at first')
  t.same(changes, [1], 'a worker that is set, not asked, is told')
  advance(249)
  t.equal(priority.allowed, 1)
  advance(1)
  t.equal(priority.allowed, 2, 'doubled after a step')
  advance(250)
  t.equal(priority.allowed, 4)
  advance(250)
  t.equal(priority.allowed, 8)
  advance(250)
  t.equal(priority.allowed, 10, 'every slot after four steps, not 16')
  advance(10_000)
  t.equal(priority.allowed, 10, 'and no cap after')
})

t.test('slow accepts during the ramp lower the allowance as at any time; the lower of the two holds', async (t) => {
  const { priority, advance } = clocked(10)
  priority.startingOnto(50_000)
  step(priority, advance, [2])
  step(priority, advance, [2, 40])
  step(priority, advance, [2])
  t.equal(priority.allowed, 5, 'the ramp is at 8; the slow step halved the slots to 5')
  advance(1_000)
  t.ok(priority.allowed <= 6, 'the ramp ended, the halving stands until quick steps give slots back')
})

t.test('the ramp tells onChange each step on a real timer until every slot is allowed, and stop() ends it', async (t) => {
  const changes: number[] = []
  const priority = new AcceptPriority(8, { stepMs: 20, onChange: (allowed) => { changes.push(allowed) } })
  t.teardown(() => { priority.stop() })
  priority.startingOnto(50_000)
  t.same(changes, [1])
  const started = Date.now()
  while (changes.at(-1) !== 8 && Date.now() - started < 10_000) await new Promise((resolve) => setTimeout(resolve, 5))
  t.equal(changes.at(-1), 8, 'every slot, with no accept')
  t.ok(changes.every((allowed, index) => index === 0 || allowed >= changes[index - 1]!), `never lower along the way: ${changes.join(', ')}`)
  const told = changes.length
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(changes.length, told, 'the timer stopped once every slot was allowed')
  const stopped = new AcceptPriority(8, { stepMs: 20, onChange: (allowed) => { changes.push(allowed) } })
  stopped.stop()
  stopped.startingOnto(50_000)
  t.equal(stopped.allowed, 8, 'a stopped priority does not start a ramp')
})
