import { spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, openSync, writeSync, closeSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { sqliteInbox } from '../src/sqlite/inbox.js'
import { tempDir } from './inbox-contract/scenarios.js'
import { delivery, event, receiver, until } from './inbox-contract/support.js'

/** A file with `count` events, checkpointed so that every page is in the main file. */
async function seeded (path: string, count: number): Promise<void> {
  const webhooks = receiver(sqliteInbox({ path }), { maxQueueSize: count + 1 })
  for (let index = 0; index < count; index++) {
    const { status } = await webhooks.receive(delivery(event(`evt_seed_${index}`)))
    if (status !== 200) throw new Error(`seeding answered ${status}`)
  }
  await webhooks.close()
}

function overwritePage (path: string, page: number, bytes: number): void {
  const pageSize = new Database(path, { readonly: true }).pragma('page_size', { simple: true }) as number
  const fd = openSync(path, 'r+')
  writeSync(fd, Buffer.alloc(bytes, 0xa5), 0, bytes, (page - 1) * pageSize + 100)
  closeSync(fd)
}

t.test('issue 12: a damaged file fails the start, naming the file, instead of answering 2xx to events it cannot run', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  await seeded(path, 300)
  // Past the empty root pages of schema 3's flow tables (pages 8 to 14): a page of events.
  overwritePage(path, 20, 512)
  t.throws(() => sqliteInbox({ path }), { code: 'SQLITE_INBOX_DAMAGED', message: new RegExp(`inbox file "${path}" is damaged \\(quick_check`) })
  t.throws(() => sqliteInbox({ path, startupCheck: 'full' }), { code: 'SQLITE_INBOX_DAMAGED', message: /integrity_check/ })
  t.throws(() => sqliteInbox({ path, startupCheck: 'sometimes' as never }), { message: /"startupCheck" must be 'quick', 'full' or 'none'/ })
})

t.test('claims that keep failing turn the inbox degraded: deliveries get 503 until claims succeed again', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const inbox = sqliteInbox({ path, pollIntervalMs: 50 })
  const webhooks = receiver(inbox, { retryAfterSeconds: 11 })
  t.teardown(() => webhooks.close())
  const handled: string[] = []
  webhooks.on('action.completed', function record (evt) { handled.push(evt.id) })
  t.same(inbox.health(), { status: 'ok', reasons: [] })
  // A real SQLite error on every claim, as a damaged page under the queue's index gives.
  const db = new Database(path)
  t.teardown(() => { db.close() })
  db.exec(`CREATE TRIGGER broken_claims BEFORE UPDATE OF attempts ON sir_webhook_events
    BEGIN SELECT RAISE(ABORT, 'simulated: database disk image is malformed'); END`)
  t.equal((await webhooks.receive(delivery(event('evt_before')))).status, 200, 'accepted before anything failed')
  await until(() => inbox.health().status === 'degraded', 'the inbox to see its claims fail')
  t.match(inbox.health().reasons, [/claims are failing \(SQLITE_CONSTRAINT_TRIGGER: simulated: database disk image is malformed\)/])
  const refused = await webhooks.receive(delivery(event('evt_while_broken')))
  t.equal(refused.status, 503)
  t.equal(refused.code, 'INBOX_UNAVAILABLE')
  t.equal(refused.headers['retry-after'], '11')
  t.equal(await inbox.outcome('evt_while_broken'), undefined, 'nothing was recorded')
  t.ok(webhooks.log.some((entry) => entry.level === 'error' && entry.msg === 'the SQLite inbox cannot run events; deliveries get 503 until it recovers'))

  db.exec('DROP TRIGGER broken_claims')
  await until(() => inbox.health().status === 'ok', 'the inbox to recover on its next claim')
  t.equal((await webhooks.receive(delivery(event('evt_after')))).status, 200)
  await until(() => handled.length === 2, 'both accepted events to run')
  t.same(handled.sort(), ['evt_after', 'evt_before'])
})

t.test('an outcome write that fails turns the inbox degraded until one succeeds', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const inbox = sqliteInbox({ path, pollIntervalMs: 50 })
  const webhooks = receiver(inbox)
  t.teardown(() => webhooks.close())
  const db = new Database(path)
  t.teardown(() => { db.close() })
  // The first attempt's outcome write fails, as on a full disk; the second's succeeds.
  db.exec(`CREATE TRIGGER broken_outcomes BEFORE UPDATE OF state ON sir_webhook_events WHEN OLD.attempts = 1
    BEGIN SELECT RAISE(ABORT, 'simulated: disk I/O error'); END`)
  let openSecondRun = (): void => {}
  const secondRunMayEnd = new Promise<void>((resolve) => { openSecondRun = resolve })
  t.teardown(openSecondRun)
  const attempts: number[] = []
  webhooks.on('action.completed', async function record (_evt, { attempt }) {
    attempts.push(attempt)
    if (attempt === 2) await secondRunMayEnd
  })
  t.equal((await webhooks.receive(delivery(event('evt_outcome')))).status, 200)
  await until(() => attempts.length === 2, 'the event to run again, its first outcome not recorded')
  t.match(inbox.health(), { status: 'degraded', reasons: [/outcome writes are failing \(SQLITE_CONSTRAINT_TRIGGER: simulated: disk I\/O error\)/] })
  t.equal((await webhooks.receive(delivery(event('evt_refused')))).code, 'INBOX_UNAVAILABLE')
  openSecondRun()
  await until(async () => (await inbox.outcome('evt_outcome'))?.state === 'done', 'the second run to be recorded')
  t.same(inbox.health(), { status: 'ok', reasons: [] })
  t.equal((await webhooks.receive(delivery(event('evt_refused')))).code, 'ACCEPTED', 'the refused event is accepted once the inbox recovered')
})

/** Runs `sqliteInbox({ path })` in a child as an unprivileged user (root can write anything). */
function openAsUser (path: string): { code: string, message: string } | 'opened' {
  const asRoot = process.getuid?.() === 0
  const script = `
    const { sqliteInbox } = await import(${JSON.stringify(new URL('../dist/sqlite/inbox.js', import.meta.url).href)})
    try { await sqliteInbox({ path: process.env.SIR_DB }).close(0); console.log('"opened"') }
    catch (error) { console.log(JSON.stringify({ code: error.code, message: error.message })) }`
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, SIR_DB: path },
    encoding: 'utf8',
    ...(asRoot ? { uid: 65534, gid: 65534 } : {})
  })
  if (result.status !== 0) throw new Error(`the child failed: ${result.stderr}`)
  return JSON.parse(result.stdout.trim()) as { code: string, message: string } | 'opened'
}

t.test('a file this process cannot write or read fails at start with an error that names it', async (t) => {
  const dir = tempDir(t)
  chmodSync(dir, 0o755)
  const cases = [
    { name: 'a read-only file', mode: 0o444, dirMode: 0o777 },
    { name: 'a file in a directory the process may not write (no room for the WAL)', mode: 0o666, dirMode: 0o755 },
    { name: 'an unreadable file', mode: 0o000, dirMode: 0o777 }
  ]
  for (const [index, { name, mode, dirMode }] of cases.entries()) {
    const sub = join(dir, `case${index}`)
    mkdirSync(sub)
    const path = join(sub, 'inbox.db')
    await sqliteInbox({ path }).close(0)
    chmodSync(path, mode)
    chmodSync(sub, dirMode)
    t.match(openAsUser(path), { code: 'SQLITE_INBOX_UNUSABLE', message: new RegExp(`cannot use "${path}" \\(SQLITE_`) }, name)
  }
  t.throws(() => sqliteInbox({ path: join(dir, 'missing', 'inbox.db') }), { code: 'SQLITE_INBOX_UNUSABLE', message: new RegExp(`cannot use "${join(dir, 'missing', 'inbox.db')}"`) }, 'a directory that does not exist')
  t.throws(() => sqliteInbox({ path: dir }), { code: 'SQLITE_INBOX_UNUSABLE', message: /unable to open database file/ }, 'a directory given as the file')
})
