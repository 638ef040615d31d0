// The calls of one event-loop turn gathered into one Redis call (src/bullmq/turn-batch.ts).
import t from 'tap'
import { TurnBatches } from '../src/bullmq/turn-batch.js'

t.test('the calls of one turn, per owner and scope, go as one send; each caller gets its own reply', async (t) => {
  const sends: Array<{ owner: object, items: readonly string[] }> = []
  const batches = new TurnBatches<string, string>(100, async (owner, items) => {
    sends.push({ owner, items })
    return items.map((item) => item.toUpperCase())
  })
  const one = {}
  const two = {}
  const replies = await Promise.all([
    batches.add(one, 'queue-a', 'a1'), batches.add(one, 'queue-a', 'a2'),
    batches.add(one, 'queue-b', 'b1'), batches.add(two, 'queue-a', 'c1')
  ])
  t.same(replies, ['A1', 'A2', 'B1', 'C1'])
  t.same(sends.map((send) => send.items), [['a1', 'a2'], ['b1'], ['c1']], 'one send per owner and scope')
  t.equal(await batches.add(one, 'queue-a', 'later'), 'LATER')
  t.equal(sends.length, 4, 'a call in a later turn is a send of its own')
})

t.test('a turn with more calls than the most one send takes sends several', async (t) => {
  const sizes: number[] = []
  const batches = new TurnBatches<number, number>(3, async (_owner, items) => {
    sizes.push(items.length)
    return items.map((item) => item * 2)
  })
  const owner = {}
  const replies = await Promise.all([1, 2, 3, 4, 5, 6, 7].map(async (item) => await batches.add(owner, '', item)))
  t.same(replies, [2, 4, 6, 8, 10, 12, 14])
  t.same(sizes, [3, 3, 1])
})

t.test('a send that fails fails every call in it, and only those', async (t) => {
  let sends = 0
  const batches = new TurnBatches<string, string>(10, async (_owner, items) => {
    sends++
    if (sends === 1) throw new Error('Redis said no')
    return [...items]
  })
  const owner = {}
  const first = await Promise.allSettled([batches.add(owner, '', 'x'), batches.add(owner, '', 'y')])
  t.same(first.map((result) => result.status), ['rejected', 'rejected'])
  t.match(first[0], { reason: { message: 'Redis said no' } })
  t.equal(await batches.add(owner, '', 'z'), 'z', 'the next turn sends afresh')
})

t.test('a send that answers fewer replies than calls fails every call, rather than answer one with nothing', async (t) => {
  const batches = new TurnBatches<string, string>(10, async (_owner, items) => items.slice(1))
  const owner = {}
  const results = await Promise.allSettled([batches.add(owner, '', 'a'), batches.add(owner, '', 'b')])
  t.same(results.map((result) => result.status), ['rejected', 'rejected'])
  t.match(results[1], { reason: { message: /answered 1 replies for 2 calls/ } })
})
