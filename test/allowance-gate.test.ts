// The gate that holds BullMQ's job runs to the slots accepts leave, its worker's
// own concurrency staying whole (core/allowance-gate.ts).
import t from 'tap'
import { AllowanceGate } from '../src/core/allowance-gate.js'

t.test('runs past the allowance wait, first in first out, and start as runs leave or the allowance rises', async (t) => {
  let allowed = 1
  const gate = new AllowanceGate(() => allowed)
  const started: string[] = []
  const run = (name: string): Promise<void> => gate.enter().then(() => { started.push(name) })
  const a = run('a')
  const b = run('b')
  const c = run('c')
  await a
  await new Promise((resolve) => setImmediate(resolve))
  t.same(started, ['a'], 'one allowed: b and c wait')
  gate.leave()
  await b
  t.same(started, ['a', 'b'], 'a left: b in')
  allowed = 3
  t.same(started, ['a', 'b'], 'a raise is seen when told')
  gate.changed()
  await c
  t.same(started, ['a', 'b', 'c'], 'told of the raise: c in at once, no run having ended')
  const d = run('d')
  await d
  t.same(started, ['a', 'b', 'c', 'd'], 'under the allowance a run enters at once')
})

t.test('a lowered allowance holds new runs until enough have left; close() turns the waiting away, and later runs too', async (t) => {
  let allowed = 2
  const gate = new AllowanceGate(() => allowed)
  t.equal(await gate.enter(), true)
  t.equal(await gate.enter(), true)
  allowed = 1
  let third: boolean | undefined
  const waiting = gate.enter().then((entered) => { third = entered })
  gate.leave()
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(third, undefined, 'one still running, one allowed: the third waits')
  gate.close()
  await waiting
  t.equal(third, false, 'closed: turned away, not started')
  t.equal(await gate.enter(), false, 'and so is a run that comes after')
})

t.test('an allowance that tells changed() as it is read admits no run twice and counts none that does not exist', async (t) => {
  // AcceptPriority's getter gives every slot back after idleMs and says so through onChange, which calls changed().
  let allowed = 2
  let tellOnRead = false
  const gate: AllowanceGate = new AllowanceGate(() => {
    if (tellOnRead) {
      tellOnRead = false
      allowed = 4
      gate.changed()
    }
    return allowed
  })
  t.equal(await gate.enter(), true)
  t.equal(await gate.enter(), true)
  const started: number[] = []
  const runs = [1, 2, 3].map(async (n) => { if (await gate.enter()) started.push(n) })
  await new Promise((resolve) => setImmediate(resolve))
  t.same(started, [], 'two running, two allowed: three wait')
  tellOnRead = true
  gate.leave()
  await Promise.all(runs)
  t.same(started, [1, 2, 3], 'the raise to four let the three in, once each')
  for (let index = 0; index < 4; index++) gate.leave()
  const again = await Promise.all([1, 2, 3, 4].map(async () => await gate.enter()))
  t.same(again, [true, true, true, true], 'all four slots free again: no run counted that never started')
  let fifth: boolean | undefined
  void gate.enter().then((entered) => { fifth = entered })
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(fifth, undefined, 'and not one more than four')
  gate.close()
})
