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

t.test('a lowered allowance holds new runs until enough have left; openAll() lets every waiting run in', async (t) => {
  let allowed = 2
  const gate = new AllowanceGate(() => allowed)
  await gate.enter()
  await gate.enter()
  allowed = 1
  let third = false
  const waiting = gate.enter().then(() => { third = true })
  gate.leave()
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(third, false, 'one still running, one allowed: the third waits')
  gate.openAll()
  await waiting
  t.equal(third, true, 'open: in')
})
