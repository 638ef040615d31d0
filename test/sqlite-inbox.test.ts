import { spawn } from 'node:child_process'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { sqliteInbox } from '../src/sqlite/inbox.js'
import { tempDir } from './inbox-contract/scenarios.js'
import { delivery, event, receiver, sleep, until } from './inbox-contract/support.js'

t.test('options are checked, and the message names the option', async (t) => {
  t.throws(() => sqliteInbox({ path: '' }), { message: /sir-webhooks: "path" must be/ })
  t.throws(() => sqliteInbox({ path: 'x.db', leaseMs: -1 }), { message: 'sir-webhooks: "leaseMs" must be an integer of at least 100, got -1' })
  t.throws(() => sqliteInbox({ path: 'x.db', acceptTimeoutMs: 1.5 }), { message: /"acceptTimeoutMs" must be a non-negative integer/ })
  t.throws(() => sqliteInbox({ path: 'x.db', retentionSeconds: 0 }), { message: /"retentionSeconds" must be a positive integer/ })
})

t.test('issue 12: a misspelt option is refused, naming it and the nearest valid one', async (t) => {
  const misspelt = { path: 'never-created.db', leaseMS: 5_000 } as never
  t.throws(() => sqliteInbox(misspelt), { name: 'WebhookOptionsError', message: 'sir-webhooks: sqliteInbox(options): unknown option "leaseMS"; did you mean "leaseMs"?' })
  t.throws(() => sqliteInbox({ path: 'never-created.db', acceptTimeout: 100 } as never), { message: /unknown option "acceptTimeout"; did you mean "acceptTimeoutMs"\?/ })
  t.throws(() => sqliteInbox({ path: 'never-created.db', zzz: 1 } as never), { message: /unknown option "zzz"; valid options are "path", "leaseMs"/ })
})

t.test('the database is in WAL mode, so a committed accept is in the log before the 2xx', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const inbox = sqliteInbox({ path })
  const webhooks = receiver(inbox)
  t.teardown(() => webhooks.close())
  // synchronous is per connection: only the inbox's own says whether its commits are fsynced.
  t.same(inbox.durability(), { journalMode: 'wal', synchronous: 'FULL' })
  const other = new Database(path)
  t.teardown(() => other.close())
  t.equal(other.pragma('journal_mode', { simple: true }), 'wal')
  t.equal((await webhooks.receive(delivery(event('evt_wal')))).status, 200)
  // Another connection sees the row as soon as the 2xx is out: it is committed, not buffered.
  t.equal(other.prepare('SELECT count(*) FROM sir_webhook_events WHERE id = ?').pluck().get('evt_wal'), 1)
})

t.test('a database locked past acceptTimeoutMs gets 503 with Retry-After, and nothing is recorded', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const webhooks = receiver(sqliteInbox({ path, acceptTimeoutMs: 100 }), { retryAfterSeconds: 7 })
  t.teardown(() => webhooks.close())
  let calls = 0
  webhooks.on('action.completed', () => { calls++ }, { name: 'record' })
  const locker = new Database(path)
  t.teardown(() => { if (locker.open) locker.close() })
  locker.exec('BEGIN IMMEDIATE')
  const startedAt = Date.now()
  const refused = await webhooks.receive(delivery(event('evt_locked')))
  const tookMs = Date.now() - startedAt
  t.equal(refused.status, 503)
  t.equal(refused.code, 'INBOX_UNAVAILABLE')
  t.equal(refused.headers['retry-after'], '7')
  // Both sides: it waited for the lock, and not much longer than acceptTimeoutMs.
  t.ok(tookMs >= 90 && tookMs < 1_000, `answered after ${tookMs} ms for acceptTimeoutMs 100`)
  t.match(webhooks.log.find((entry) => entry.msg === 'the SQLite inbox could not record the event')?.fields, { event: { id: 'evt_locked' } })
  locker.exec('ROLLBACK')
  t.equal(await webhooks.inbox.outcome?.('evt_locked'), undefined, 'nothing was recorded')
  const retried = await webhooks.receive(delivery(event('evt_locked')))
  t.equal(retried.code, 'ACCEPTED', "the sender's retry is accepted, not taken for a duplicate")
  await until(() => calls === 1, 'the handler')
})

t.test('a full inbox answers 503 and records nothing; a duplicate of a queued event is still 200', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const webhooks = receiver(sqliteInbox({ path }), { maxQueueSize: 1, closeGraceMs: 50, retryAfterSeconds: 3 })
  t.teardown(() => webhooks.close())
  webhooks.on('action.completed', async (_evt, { signal }) => {
    await new Promise<void>((resolve) => { signal.addEventListener('abort', () => { resolve() }) })
  }, { name: 'record' })
  t.equal((await webhooks.receive(delivery(event('evt_first')))).code, 'ACCEPTED')
  const full = await webhooks.receive(delivery(event('evt_second')))
  t.equal(full.status, 503)
  t.equal(full.code, 'QUEUE_FULL')
  t.equal(full.headers['retry-after'], '3')
  t.equal(await webhooks.inbox.outcome?.('evt_second'), undefined)
  t.equal((await webhooks.receive(delivery(event('evt_first')))).code, 'DUPLICATE')
  t.equal(webhooks.inbox.size, 1)
})

t.test('done events are purged after retentionSeconds, and their ids may then come again', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  let now = Date.now()
  const inbox = sqliteInbox({ path, retentionSeconds: 60 })
  const webhooks = receiver(inbox, { clock: () => now, retry: { attempts: 1 } })
  t.teardown(() => webhooks.close())
  let calls = 0
  webhooks.on('action.completed', function maybe (evt) {
    calls++
    if (evt.id === 'evt_fails') throw new Error('no')
  })
  await webhooks.receive(delivery(event('evt_old')))
  await webhooks.receive(delivery(event('evt_fails')))
  await until(async () => (await inbox.outcome('evt_old'))?.state === 'done' && (await inbox.outcome('evt_fails'))?.state === 'dead', 'both to finish')
  t.same(await inbox.purge(), { done: 0, dead: 0 }, 'nothing is old enough yet')
  now += 61_000
  t.same(await inbox.purge(), { done: 1, dead: 0 }, 'the done event goes; the dead one is kept')
  t.equal(await inbox.outcome('evt_old'), undefined)
  t.equal((await inbox.outcome('evt_fails'))?.state, 'dead')
  t.equal((await webhooks.receive(delivery(event('evt_old'), undefined))).code, 'ACCEPTED')
  await until(() => calls === 3, 'the handler to run for the re-sent event')
})

t.test('an event its receivers died on every attempt is dead-lettered instead of run again', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const first = sqliteInbox({ path })
  await first.close(0)
  // What a crash loop leaves: every attempt started, none finished, the lease expired.
  const db = new Database(path)
  db.prepare("INSERT INTO sir_webhook_events (id, type, event, state, received_at, attempts, next_attempt_at, lease_owner, lease_until) VALUES ('evt_poison', 'action.completed', ?, 'pending', 1, 3, 1, 'gone', 1)")
    .run(JSON.stringify(event('evt_poison')))
  db.close()
  const webhooks = receiver(sqliteInbox({ path }))
  t.teardown(() => webhooks.close())
  let calls = 0
  const dead: unknown[] = []
  webhooks.on('action.completed', () => { calls++ }, { name: 'record' })
  webhooks.onDeadLetter((entry) => { dead.push(entry) })
  await until(() => dead.length === 1, 'the dead letter')
  await sleep(100)
  t.equal(calls, 0, 'the handler is not run a fourth time')
  t.match(dead[0], { reason: 'handler_failed', attempts: 3, event: { id: 'evt_poison' } })
  t.match((await webhooks.inbox.outcome?.('evt_poison'))?.lastError, /stopped during each of 3 attempts/)
})

t.test('dead letters can be listed and re-driven without a receiver', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const webhooks = receiver(sqliteInbox({ path }), { retry: { attempts: 1 } })
  webhooks.on('action.completed', function broken () { throw new Error('broken') })
  await webhooks.receive(delivery(event('evt_admin')))
  await until(async () => (await webhooks.inbox.outcome?.('evt_admin'))?.state === 'dead', 'the dead letter')
  await webhooks.close()
  await t.rejects(async () => { await webhooks.inbox.deadLetters?.() }, /SQLite inbox is closed/, 'a closed inbox does not answer as if it were empty')
  // An admin script opens the same file.
  const admin = sqliteInbox({ path })
  t.teardown(() => admin.close(0))
  t.match(await admin.deadLetters(), [{ id: 'evt_admin', state: 'dead', lastError: 'broken: Error: broken', event: { id: 'evt_admin' } }])
  t.equal(await admin.redrive('evt_admin'), true)
  t.equal((await admin.outcome('evt_admin'))?.state, 'pending')
})

t.test('a handler that outlives leaseMs keeps its event: the lease is renewed, another process does not take it', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const calls: string[] = []
  const slowHandler = (name: string) => async () => {
    calls.push(name)
    await sleep(1_200)
  }
  const first = receiver(sqliteInbox({ path, leaseMs: 200, pollIntervalMs: 50 }))
  const second = receiver(sqliteInbox({ path, leaseMs: 200, pollIntervalMs: 50 }))
  t.teardown(() => Promise.all([first.close(), second.close()]))
  first.on('action.completed', slowHandler('first'), { name: 'record' })
  second.on('action.completed', slowHandler('second'), { name: 'record' })
  t.equal((await first.receive(delivery(event('evt_slow_handler')))).code, 'ACCEPTED')
  await until(async () => (await first.inbox.outcome?.('evt_slow_handler'))?.state === 'done', 'the event to finish')
  // Either may: the other's poll can claim the committed row while the accept waits for its WAL fsync, off the event loop.
  t.equal(calls.length, 1, `one process ran it, once (${calls.join(', ')})`)
  t.equal((await first.inbox.outcome?.('evt_slow_handler'))?.attempts, 1)
})

/** What the handlers of `long` wait for: released by the test, or after 10 s. */
function gate (): { wait: () => Promise<void>, open: () => void } {
  let open = (): void => {}
  const opened = new Promise<void>((resolve) => {
    open = resolve
    setTimeout(resolve, 10_000).unref()
  })
  return { wait: async () => { await opened }, open }
}

for (const failing of ['the outcome write', 'the outcome write and the lease expiry'] as const) {
  t.test(`an event whose outcome cannot be written runs again while other events run (${failing} fails)`, async (t) => {
    const path = join(tempDir(t), 'inbox.db')
    // A trigger makes the first attempt's writes fail with a real SQLite error, as a
    // full disk would; renewals (which move the lease later) still succeed.
    const db = new Database(path)
    t.teardown(() => { db.close() })
    const expiryFails = failing === 'the outcome write and the lease expiry'
    // With only the outcome write failing, the lease is long: a re-run within it
    // shows the lease was expired at once. With the expiry failing too, it is short:
    // the re-run shows the orphaned row was no longer renewed.
    const leaseMs = expiryFails ? 400 : 60_000
    const webhooks = receiver(sqliteInbox({ path, leaseMs, pollIntervalMs: 50 }), { closeGraceMs: 50 })
    t.teardown(() => webhooks.close())
    db.exec(`CREATE TRIGGER fail_first_outcome BEFORE UPDATE ON sir_webhook_events
      WHEN OLD.id = 'evt_orphan' AND OLD.attempts = 1 AND (NEW.lease_until IS NULL${expiryFails ? ' OR NEW.lease_until < OLD.lease_until' : ''})
      BEGIN SELECT RAISE(ABORT, 'simulated: database or disk is full'); END`)
    const long = gate()
    t.teardown(long.open)
    let longDone = false
    const orphanRuns: number[] = []
    webhooks.on('action.completed', async (evt, { attempt }) => {
      if (evt.id === 'evt_long') {
        await long.wait()
        longDone = true
      } else {
        orphanRuns.push(attempt)
      }
    }, { name: 'record' })
    t.equal((await webhooks.receive(delivery(event('evt_long')))).code, 'ACCEPTED')
    await until(async () => (await webhooks.inbox.outcome?.('evt_long'))?.attempts === 1, 'the long event to start')
    t.equal((await webhooks.receive(delivery(event('evt_orphan')))).code, 'ACCEPTED')
    await until(() => orphanRuns.length === 2, 'the event to run again', 3_000)
    t.notOk(longDone, 'it ran again while another event of this process was still running')
    t.same(orphanRuns, [1, 2])
    await until(async () => (await webhooks.inbox.outcome?.('evt_orphan'))?.state === 'done', 'the second run to be recorded')
    t.ok(webhooks.log.some((entry) => entry.msg === 'the SQLite inbox could not record an outcome; the event will run again'))
    long.open()
  })
}

t.test('a running event whose own lease lapsed is not claimed again: no attempt is counted without a run', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const webhooks = receiver(sqliteInbox({ path, leaseMs: 100, pollIntervalMs: 20 }))
  t.teardown(() => webhooks.close())
  // Renewals of this row fail, as when the event loop is blocked past leaseMs: the
  // lease lapses while the handler still runs here.
  const db = new Database(path)
  t.teardown(() => { db.close() })
  db.exec(`CREATE TRIGGER no_renewal BEFORE UPDATE ON sir_webhook_events
    WHEN OLD.id = 'evt_lapsed' AND NEW.attempts = OLD.attempts AND NEW.lease_until > OLD.lease_until
    BEGIN SELECT RAISE(ABORT, 'simulated: renewal lost'); END`)
  let runs = 0
  webhooks.on('action.completed', async () => {
    runs++
    await sleep(600)
  }, { name: 'record' })
  t.equal((await webhooks.receive(delivery(event('evt_lapsed')))).code, 'ACCEPTED')
  await until(async () => (await webhooks.inbox.outcome?.('evt_lapsed'))?.state === 'done', 'the event to finish')
  t.equal(runs, 1)
  t.equal((await webhooks.inbox.outcome?.('evt_lapsed'))?.attempts, 1, 'the lapsed lease was not re-claimed by the process running it')
})

t.test('close() leaves the lease of a still-running event to expire: another process does not start it meanwhile', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const first = receiver(sqliteInbox({ path, leaseMs: 1_000, pollIntervalMs: 50 }), { closeGraceMs: 50 })
  const second = receiver(sqliteInbox({ path, leaseMs: 1_000, pollIntervalMs: 50 }))
  t.teardown(() => Promise.all([first.close(), second.close()]))
  let firstEndedAt: number | undefined
  // Ignores its abort signal, as a handler deep in a call may.
  first.on('action.completed', async () => {
    await sleep(500)
    firstEndedAt = Date.now()
  }, { name: 'record' })
  const secondRuns: Array<{ at: number, attempt: number }> = []
  t.equal((await first.receive(delivery(event('evt_closing')))).code, 'ACCEPTED')
  await until(async () => (await first.inbox.outcome?.('evt_closing'))?.attempts === 1, 'the handler to start')
  await first.close()
  second.on('action.completed', (_evt, { attempt }) => { secondRuns.push({ at: Date.now(), attempt }) }, { name: 'record' })
  await until(() => secondRuns.length === 1, 'the other process to take the event over once the lease expired')
  t.ok(firstEndedAt !== undefined && secondRuns[0]!.at >= firstEndedAt, 'it started after the first run ended, not beside it')
  t.equal(secondRuns[0]!.attempt, 2, 'the interrupted attempt counts')
})

t.test('two close() calls at once both resolve', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const inbox = sqliteInbox({ path, pollIntervalMs: 50 })
  const webhooks = receiver(inbox)
  t.teardown(() => webhooks.close())
  let started = false
  webhooks.on('action.completed', async () => {
    started = true
    await sleep(100)
  }, { name: 'record' })
  await webhooks.receive(delivery(event('evt_two_closes')))
  await until(() => started, 'the handler to start')
  await Promise.all([inbox.close(1_000), inbox.close(1_000)])
  t.equal((await webhooks.receive(delivery(event('evt_late')))).status, 503)
})

t.test('processes sharing the file accept each of the same ids exactly once, none 503', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  // Creates the file and its schema first, so that the processes race on accepts only.
  await sqliteInbox({ path }).close(0)
  const ids = Array.from({ length: 150 }, (_, index) => `evt_shared_${index}`)
  // Each process opens its own connection and says so, then all start at one agreed
  // instant, the second halfway along the ids, so that they meet on the same ones.
  // Two, as this machine may have two cores: a third would wait for a core, not a lock.
  const code = `
    const { sqliteInbox } = await import(process.env.SIR_MODULE)
    const inbox = sqliteInbox({ path: process.env.SIR_DB, acceptTimeoutMs: 10000 })
    const all = JSON.parse(process.env.SIR_IDS)
    const offset = Number(process.env.SIR_OFFSET)
    const ids = [...all.slice(offset), ...all.slice(0, offset)]
    process.stdout.write('ready\\n')
    process.stdin.once('data', async (startAt) => {
      while (Date.now() < Number(startAt)) {}
      const answers = {}
      const startedAt = Date.now()
      for (const id of ids) answers[id] = await inbox.accept({ id, type: 'action.completed', createdAt: '2026-05-10T09:12:00Z', data: {} }, Date.now())
      const endedAt = Date.now()
      await inbox.close(0)
      process.stdout.write(JSON.stringify({ answers, startedAt, endedAt }) + '\\n')
      process.exit(0)
    })`
  // The TypeScript loader tap runs this test with, so the children import the source.
  const loaderArgs = process.execArgv.filter((arg) => arg.includes('@tapjs/typescript'))
  const env = { ...process.env, SIR_MODULE: new URL('../src/sqlite/inbox.ts', import.meta.url).href, SIR_DB: path, SIR_IDS: JSON.stringify(ids) }
  const children = Array.from({ length: 2 }, (_, index) => spawn(process.execPath, [...loaderArgs, '--input-type=module', '-e', code], {
    env: { ...env, SIR_OFFSET: String(index * ids.length / 2) },
    stdio: ['pipe', 'pipe', 'inherit']
  }))
  t.teardown(() => { for (const child of children) child.kill('SIGKILL') })
  const lines = children.map((child) => {
    const queue: string[] = []
    let waiting: ((line: string) => void) | undefined
    let pending = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk
      const parts = pending.split('\n')
      pending = parts.pop() ?? ''
      for (const line of parts) {
        if (waiting === undefined) queue.push(line)
        else { waiting(line); waiting = undefined }
      }
    })
    return async (): Promise<string> => queue.shift() ?? await new Promise((resolve) => { waiting = resolve })
  })
  t.same(await Promise.all(lines.map(async (next) => await next())), ['ready', 'ready'])
  const startAt = Date.now() + 200
  for (const child of children) child.stdin.write(String(startAt))
  const runs = await Promise.all(lines.map(async (next) => JSON.parse(await next()) as { answers: Record<string, string>, startedAt: number, endedAt: number }))
  const wrong = ids.filter((id) => {
    const forId = runs.map((run) => run.answers[id])
    return forId.filter((answer) => answer === 'accepted').length !== 1 || forId.some((answer) => answer !== 'accepted' && answer !== 'duplicate')
  })
  t.same(wrong, [], `each of ${ids.length} ids accepted by exactly one of ${children.length} processes, the others told duplicate`)
  // SQLite's busy handler is not fair: one process may win every lock while the
  // other waits, and then be told duplicate for each id. What matters is that they overlapped.
  t.ok(runs.every((run) => runs.every((other) => run.startedAt < other.endedAt)), 'the two processes accepted at the same time')
  const check = new Database(path)
  t.teardown(() => { check.close() })
  t.equal(check.prepare('SELECT count(*) FROM sir_webhook_events').pluck().get(), ids.length)
})
