// The gate with a store that shares `concurrency` (FlowStore.takeSlot/freeSlot,
// as the Postgres inbox's does): the store's answer decides, every slot taken is
// given back exactly once, and no token is spent on a run that has no slot.
import t from 'tap'
import type { RegisteredHandler } from '../src/core/handlers.js'
import { MemoryFlowStore } from '../src/core/flow/memory-store.js'
import { FlowGate, isDeferral } from '../src/core/flow/gate.js'
import { captureLogger } from './inbox-contract/support.js'

/** A store whose slots another receiver may hold: `othersHold` of the handler's slots are taken elsewhere. */
function sharedStore (othersHold: number): MemoryFlowStore & { taken: number[], freed: number[], tokens: number, othersHold: number } {
  const store = Object.assign(new MemoryFlowStore(), { taken: [] as number[], freed: [] as number[], tokens: 0, othersHold })
  const held = new Set<number>()
  const takeToken = store.takeToken.bind(store)
  return Object.assign(store, {
    takeToken: (handler: string, rate: { perSecond: number, burst: number }, reserve: boolean) => {
      store.tokens += 1
      return takeToken(handler, rate, reserve)
    },
    takeSlot: async (_handler: string, limit: number) => {
      for (let slot = store.othersHold; slot < limit; slot++) {
        if (held.has(slot)) continue
        held.add(slot)
        store.taken.push(slot)
        return slot
      }
      return undefined
    },
    freeSlot: (_handler: string, slot: number) => {
      held.delete(slot)
      store.freed.push(slot)
    }
  })
}

function limited (limits: RegisteredHandler['limits']): RegisteredHandler {
  return { name: 'writeLedger', limits } as unknown as RegisteredHandler
}

t.test('a slot held by another receiver defers the run for concurrency, though none runs here', async (t) => {
  const store = sharedStore(1)
  const gate = new FlowGate(store, { maxDeferrals: 100, maxDeferredMs: 60_000 }, captureLogger())
  const admission = await gate.admit(limited({ concurrency: 1, rate: { perSecond: 100, burst: 1 } }))
  t.ok(isDeferral(admission) && admission.reason === 'concurrency', 'deferred: concurrency')
  t.equal(store.tokens, 0, 'no token asked for without a slot')
  t.equal(gate.deferrals().get('writeLedger')?.concurrency, 1)
  store.othersHold = 0
  const admitted = await gate.admit(limited({ concurrency: 1, rate: { perSecond: 100, burst: 1 } }))
  t.notOk(isDeferral(admitted), 'admitted once the other receiver let go')
  if (isDeferral(admitted)) return
  t.same(store.taken, [0])
  admitted.release()
  admitted.release()
  t.same(store.freed, [0], 'given back once, however often release() is called')
})

t.test('a slot is given back when the rate then says "not now"', async (t) => {
  const store = sharedStore(0)
  const gate = new FlowGate(store, { maxDeferrals: 100, maxDeferredMs: 60_000 }, captureLogger())
  const handler = limited({ concurrency: 2, rate: { perSecond: 1, burst: 1 } })
  const first = await gate.admit(handler)
  t.notOk(isDeferral(first))
  const second = await gate.admit(handler)
  t.ok(isDeferral(second) && second.reason === 'rate', 'the second waits for a token')
  t.same(store.taken, [0, 1])
  t.same(store.freed, [1], 'its slot was given back at once')
  if (!isDeferral(first)) first.release()
  t.same(store.freed, [1, 0])
})
