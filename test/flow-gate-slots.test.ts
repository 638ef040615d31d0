// The gate with a store that shares concurrency (FlowStore.takeSlot, BullMQ's leased
// slots): the store's slot is the limit, and it is given back whenever the run does not start.
import t from 'tap'
import { FlowGate, isDeferral, type Admission } from '../src/core/flow/gate.js'
import { MemoryFlowStore } from '../src/core/flow/memory-store.js'
import type { FlowStore, SlotLease } from '../src/core/flow/store.js'
import type { RegisteredHandler } from '../src/core/handlers.js'
import { captureLogger } from './inbox-contract/support.js'

/** Two receivers' stores on one shared pool of slots, as two processes on one Redis. */
function sharedSlots (): { held: () => number, store: () => FlowStore & { failing: boolean } } {
  let held = 0
  return {
    held: () => held,
    store: () => {
      const memory = new MemoryFlowStore()
      const store = {
        scope: 'test',
        failing: false,
        takeToken: memory.takeToken.bind(memory),
        setPaused: memory.setPaused.bind(memory),
        pauseState: memory.pauseState.bind(memory),
        async takeSlot (_handler: string, limit: number): Promise<SlotLease | undefined> {
          if (store.failing) throw new Error('Redis is down')
          if (held >= limit) return undefined
          held += 1
          let released = false
          return { release: () => { if (!released) { released = true; held -= 1 } } }
        }
      }
      return store
    }
  }
}

const bound = { maxDeferrals: 100, maxDeferredMs: 60_000 }
const handler = (limits: RegisteredHandler['limits']): RegisteredHandler => ({ name: 'callPartner', limits } as unknown as RegisteredHandler)

t.test('concurrency 1 over two gates: the second waits for the first run\'s slot', async (t) => {
  const slots = sharedSlots()
  const a = new FlowGate(slots.store(), bound, captureLogger())
  const b = new FlowGate(slots.store(), bound, captureLogger())
  const limited = handler({ concurrency: 1 })
  const first = await a.admit(limited)
  t.notOk(isDeferral(first), 'the first run starts')
  const second = await b.admit(limited)
  t.match(second, { reason: 'concurrency' }, 'a run in the other receiver waits')
  t.equal(b.deferrals().get('callPartner')?.concurrency, 1, 'counted as a concurrency deferral')
  ;(first as Exclude<Admission, { reason: string }>).release()
  t.equal(slots.held(), 0, 'the slot is given back when the run ends')
  t.notOk(isDeferral(await b.admit(limited)), 'then the other receiver\'s run starts')
})

t.test('a slot taken and then no rate token: the slot is given back', async (t) => {
  const slots = sharedSlots()
  const gate = new FlowGate(slots.store(), bound, captureLogger())
  const limited = handler({ concurrency: 2, rate: { perSecond: 1, burst: 1 } })
  const first = await gate.admit(limited)
  t.notOk(isDeferral(first))
  const second = await gate.admit(limited)
  t.match(second, { reason: 'rate' }, 'over its rate')
  t.equal(slots.held(), 1, 'only the running run holds a slot')
})

t.test('the store cannot be asked for a slot: the error is thrown and nothing is held', async (t) => {
  const slots = sharedSlots()
  const store = slots.store()
  const gate = new FlowGate(store, bound, captureLogger())
  const limited = handler({ concurrency: 1 })
  store.failing = true
  await t.rejects(Promise.resolve(gate.admit(limited)), { message: 'Redis is down' })
  store.failing = false
  t.notOk(isDeferral(await gate.admit(limited)), 'the count in the process was given back: the next run starts')
})
