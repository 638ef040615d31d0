// Handler work gives way to accepts (issue 22, item 1): the allowance of handler
// slots that durable inboxes follow, on a controlled clock.
import t from 'tap'
import { AcceptPriority } from '../src/core/accept-priority.js'

function clocked (slots: number, options: { targetMs?: number, stepMs?: number, idleMs?: number } = {}): { priority: AcceptPriority, advance: (ms: number) => void, changes: number[] } {
  let now = 1_000_000
  const changes: number[] = []
  const priority = new AcceptPriority(slots, { ...options, now: () => now, onChange: (allowed) => { changes.push(allowed) } })
  return { priority, advance: (ms) => { now += ms }, changes }
}

t.test('quick accepts leave every slot to the handlers', async (t) => {
  const { priority, advance } = clocked(10)
  for (let index = 0; index < 50; index++) {
    priority.accepted(3)
    advance(20)
  }
  t.equal(priority.allowed, 10)
})

t.test('slow accepts halve the slots down to one; quick ones give them back one per step', async (t) => {
  const { priority, advance, changes } = clocked(10, { targetMs: 10, stepMs: 250 })
  priority.accepted(2)
  advance(50)
  priority.accepted(40)
  t.equal(priority.allowed, 5, 'halved on the first slow accept')
  priority.accepted(40)
  t.equal(priority.allowed, 5, 'batches already in flight do not halve it again at once')
  for (let index = 0; index < 5; index++) {
    advance(25)
    priority.accepted(40)
  }
  t.equal(priority.allowed, 1, 'never below one: a backlog still drains')
  advance(100)
  priority.accepted(2)
  t.equal(priority.allowed, 1, 'not within a step of the last change')
  advance(150)
  priority.accepted(2)
  t.equal(priority.allowed, 2, 'a quick accept a step after it adds one slot')
  priority.accepted(2)
  t.equal(priority.allowed, 2, 'and no more within the same step')
  for (let index = 0; index < 20; index++) {
    advance(250)
    priority.accepted(2)
  }
  t.equal(priority.allowed, 10, 'back to every slot, one step at a time, never past it')
  t.same(changes.slice(0, 5), [5, 2, 1, 2, 3], 'each change was told')
})

t.test('the target follows the store: a far database whose accepts always take 30 ms is not taken for a busy one', async (t) => {
  const { priority, advance } = clocked(10, { targetMs: 10 })
  for (let index = 0; index < 100; index++) {
    priority.accepted(30 + (index % 5))
    advance(20)
  }
  t.equal(priority.allowed, 10, 'waits near the shortest of the last seconds are not slow')
  priority.accepted(90)
  t.equal(priority.allowed, 5, 'a wait of three times the usual is')
})

t.test('with no accept for idleMs every slot comes back, by the getter and by the timer', async (t) => {
  const { priority, advance } = clocked(8, { idleMs: 2_000 })
  priority.accepted(2)
  advance(30)
  priority.accepted(100)
  t.equal(priority.allowed, 4)
  advance(1_999)
  t.equal(priority.allowed, 4, 'not before idleMs')
  advance(1)
  t.equal(priority.allowed, 8, 'then all of them')

  // The timer, on the real clock, for a worker that is told rather than asked.
  const told: number[] = []
  const real = new AcceptPriority(4, { idleMs: 50, onChange: (allowed) => { told.push(allowed) } })
  real.accepted(1)
  await new Promise((resolve) => setTimeout(resolve, 20))
  real.accepted(500)
  t.same(told, [2], 'halved')
  await new Promise((resolve) => setTimeout(resolve, 400))
  t.same(told, [2, 4], 'and told every slot once the accepts stopped')
})
