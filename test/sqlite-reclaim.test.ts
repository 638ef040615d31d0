import { spawn } from 'node:child_process'
import { hostname } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { sqliteInbox } from '../src/sqlite/inbox.js'
import { kernelStartTime, newOwner, parseOwner } from '../src/sqlite/owner.js'
import { kill, startReceiver } from './fixtures/spawn-receiver.js'
import { tempDir } from './inbox-contract/scenarios.js'
import { SECRET, event, post, receiver, until } from './inbox-contract/support.js'

const LONG_LEASE_MS = 60_000

t.test('issue 12: a receiver restarted on the same host takes back its killed predecessor\'s events at once, not after the lease', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'inbox.db')
  const killed = await startReceiver({ SIR_STORE: 'sqlite', SIR_DB: path, SIR_LEASE_MS: String(LONG_LEASE_MS), SIR_SECRET: SECRET, SIR_HANDLER_MS: '60000' })
  t.teardown(() => kill(killed, 'SIGKILL'))
  t.equal(await post(killed.url, event('evt_orphaned')), 200)
  await until(() => killed.started.includes('evt_orphaned'), 'the handler to start in the doomed process')
  await kill(killed, 'SIGKILL')

  const restartedAt = Date.now()
  const webhooks = receiver(sqliteInbox({ path, leaseMs: LONG_LEASE_MS }))
  t.teardown(() => webhooks.close())
  const attempts: number[] = []
  webhooks.on('action.completed', function resume (_evt, { attempt }) { attempts.push(attempt) })
  await until(() => attempts.length === 1, 'the restarted receiver to resume the event', 10_000)
  t.ok(Date.now() - restartedAt < 10_000, `resumed within ${Date.now() - restartedAt} ms, with a ${LONG_LEASE_MS} ms lease`)
  t.same(attempts, [2], 'as the second attempt')
  t.match(webhooks.log.find((entry) => entry.msg === 'took back the events of a stopped process on this host without waiting for their lease')?.fields, { events: 1 })
})

t.test('leases of live processes and of other hosts are kept; those of dead processes and reused PIDs on this host are freed', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  await sqliteInbox({ path }).close(0)
  // A live process of this host, with its real start time.
  const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' })
  t.teardown(() => { sleeper.kill('SIGKILL') })
  const sleeperPid = sleeper.pid ?? 0
  await until(() => kernelStartTime(sleeperPid) !== undefined || process.platform !== 'linux', 'the sleeper to be listed')
  const ours = parseOwner(newOwner())
  if (ours === undefined) throw new Error('newOwner() gave an id parseOwner() cannot read')
  const here = ours.host
  const exited = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
  const deadPid = exited.pid ?? 0
  await new Promise((resolve) => exited.once('exit', resolve))
  const owners = {
    live: `${sleeperPid}:${kernelStartTime(sleeperPid) ?? 't1'}:aa@${here}`,
    otherHost: `${deadPid}:123:bb@not-${hostname()}`,
    legacy: 'b6b2a4a6-3a58-4f70-8a49-5bb7e2a39a1c',
    dead: `${deadPid}:123:cc@${here}`,
    reusedPid: `${process.pid}:${ours.start}0:dd@${here}`
  }
  const db = new Database(path)
  t.teardown(() => { db.close() })
  const insert = db.prepare("INSERT INTO sir_webhook_events (id, type, event, state, received_at, attempts, next_attempt_at, lease_owner, lease_until) VALUES (?, 'action.completed', ?, 'pending', 1, 1, 1, ?, ?)")
  for (const [name, owner] of Object.entries(owners)) insert.run(`evt_${name}`, JSON.stringify(event(`evt_${name}`)), owner, Date.now() + LONG_LEASE_MS)

  const webhooks = receiver(sqliteInbox({ path, leaseMs: LONG_LEASE_MS }))
  t.teardown(() => webhooks.close())
  const handled: string[] = []
  webhooks.on('action.completed', function record (evt) { handled.push(evt.id) })
  await until(() => handled.length === 2, 'the freed events to run')
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.same(handled.sort(), ['evt_dead', 'evt_reusedPid'])
  const leaseOwner = db.prepare('SELECT lease_owner FROM sir_webhook_events WHERE id = ?').pluck()
  t.equal(leaseOwner.get('evt_live'), owners.live, 'a live process keeps its lease')
  t.equal(leaseOwner.get('evt_otherHost'), owners.otherHost, 'another host keeps its lease')
  t.equal(leaseOwner.get('evt_legacy'), owners.legacy, 'an owner id of an older version keeps its lease')
})
