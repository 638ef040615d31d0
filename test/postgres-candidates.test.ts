// The Postgres inbox's list of ids to claim, without a database: when a search
// must scan the table first, and in what order ids come out.
import t from 'tap'
import { Candidates } from '../src/postgres/candidates.js'

const ids = (prefix: string, count: number): string[] => Array.from({ length: count }, (_, index) => `${prefix}${index}`)

const takeAll = (candidates: Candidates): string[] => {
  const taken: string[] = []
  for (let id = candidates.take(); id !== undefined; id = candidates.take()) taken.push(id)
  return taken
}

t.test('a new list scans once, then takes accepts in commit order without scanning when it runs dry', async (t) => {
  const candidates = new Candidates()
  t.ok(candidates.scanDue, 'the first search scans: events may be waiting from before the start')
  candidates.scanStarted()
  candidates.addScanned([], 200, new Set())
  t.notOk(candidates.scanDue)
  candidates.addAccepted(['a', 'b'])
  t.same(takeAll(candidates), ['a', 'b'])
  t.notOk(candidates.scanDue, 'a dry list is no reason to scan')
  candidates.wantScan()
  t.ok(candidates.scanDue, 'a request is')
})

t.test('ids from a full scan go first, and the table is scanned again before newer accepts', async (t) => {
  const candidates = new Candidates()
  candidates.addAccepted(['new1'])
  candidates.scanStarted()
  candidates.addScanned(ids('old', 3), 3, new Set(['old1']))
  t.same([candidates.take(), candidates.take()], ['old0', 'old2'], 'the scan\'s ids, less those running here')
  t.equal(candidates.take(), undefined, 'not the accept yet: more may be due behind a full scan')
  t.ok(candidates.scanDue)
  candidates.scanStarted()
  candidates.addScanned(['old3'], 3, new Set())
  t.same(takeAll(candidates), ['old3', 'new1'])
})

t.test('a full scan that ends on an accept of this process listed everything older: no second scan', async (t) => {
  const candidates = new Candidates()
  candidates.addAccepted(['a', 'b', 'c'])
  candidates.scanStarted()
  candidates.addScanned(['x', 'a', 'b'], 3, new Set())
  t.same(takeAll(candidates), ['x', 'a', 'b', 'c'], 'each once, the accepts after the scan\'s')
  t.notOk(candidates.scanDue)
})

t.test('accepts past the cap are left to a scan made once the kept ones are used up', async (t) => {
  const candidates = new Candidates()
  candidates.scanStarted()
  candidates.addScanned([], 200, new Set())
  candidates.addAccepted(ids('kept', 10_000))
  candidates.addAccepted(['dropped'])
  t.equal(candidates.size, 10_000, 'the list holds 10 000 ids at most')
  t.notOk(candidates.scanDue, 'no scan while older accepts are waiting')
  t.equal(takeAll(candidates).length, 10_000)
  t.ok(candidates.scanDue, 'then the table is scanned for the ones not kept')
  candidates.scanStarted()
  candidates.addScanned(['dropped'], 200, new Set())
  t.same(takeAll(candidates), ['dropped'])
  t.notOk(candidates.scanDue)
})

t.test('claimed ids put back come first', async (t) => {
  const candidates = new Candidates()
  candidates.scanStarted()
  candidates.addScanned([], 200, new Set())
  candidates.addAccepted(['a', 'b'])
  candidates.putBack(['z'])
  t.same(takeAll(candidates), ['z', 'a', 'b'])
})

t.test('another instance\'s accepts are scanned for once this process has taken its own', async (t) => {
  const candidates = new Candidates()
  candidates.scanStarted()
  candidates.addScanned([], 200, new Set())
  candidates.addAccepted(['mine'])
  candidates.othersAccepted()
  t.notOk(candidates.scanDue, 'not while its own wait')
  t.equal(candidates.take(), 'mine')
  t.ok(candidates.scanDue, 'then')
  candidates.scanStarted()
  candidates.addScanned(['theirs'], 200, new Set())
  t.same(takeAll(candidates), ['theirs'])
  t.notOk(candidates.scanDue, 'once')
})

t.test('accepts not kept are scanned for once the list runs dry, even after a full scan in between', async (t) => {
  const candidates = new Candidates()
  candidates.scanStarted()
  candidates.addScanned([], 200, new Set())
  const kept = ids('kept', 10_000)
  candidates.addAccepted(kept)
  candidates.addAccepted(['dropped']) // not kept: newer than every kept id
  // A scan asked for meanwhile (a poll tick, a retry timer, an accept-only wake-up):
  // it lists the 200 oldest due, all kept accepts, the last one too.
  candidates.wantScan()
  t.ok(candidates.scanDue)
  candidates.scanStarted()
  candidates.addScanned(kept.slice(0, 200), 200, new Set())
  const taken = takeAll(candidates)
  t.equal(taken.length, 10_000, 'every kept id, once')
  t.notOk(taken.includes('dropped'))
  t.ok(candidates.scanDue, 'the list ran dry and "dropped" was never listed: the next search scans')
})

t.test('another instance\'s accepts are scanned for once this process\'s own are taken, even after a full scan in between', async (t) => {
  const candidates = new Candidates()
  candidates.scanStarted()
  candidates.addScanned([], 200, new Set())
  const mine = ids('mine', 300)
  candidates.addAccepted(mine)
  candidates.othersAccepted() // theirs are newer than every id of mine
  candidates.wantScan()
  candidates.scanStarted()
  candidates.addScanned(mine.slice(0, 200), 200, new Set())
  t.equal(takeAll(candidates).length, 300)
  t.ok(candidates.scanDue, 'theirs were never listed: the next search scans')
})
