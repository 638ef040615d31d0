import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough, Writable } from 'node:stream'
import t, { type Test } from 'tap'
import { Webhooks, type Delivery } from '../../src/index.js'
import { sqliteInbox, type SqliteInbox } from '../../src/sqlite/inbox.js'
import { EXIT_FAILED, EXIT_OK, parseFlags, type Io } from '../../src/cli/args.js'
import { inboxCommand } from '../../src/cli/inbox.js'
import { captureLogs } from '../helpers/logs.js'
import { SECRET, actionCompleted, signedRequest } from '../helpers/deliveries.js'

// `inbox purge` in a terminal, run in process: a fake stdin that says it is a TTY
// and carries the operator's answer. (Spawned, the CLI's stdin is a pipe.)

function terminal (answer: string | undefined): Io & { out: () => string, err: () => string } {
  const stdin = Object.assign(new PassThrough(), { isTTY: true })
  if (answer !== undefined) stdin.end(answer)
  else stdin.end()
  let out = ''
  let err = ''
  const sink = (append: (text: string) => void): Writable => new Writable({ write (chunk: Buffer | string, _encoding, done) { append(String(chunk)); done() } })
  return {
    stdin,
    stdout: sink((text) => { out += text }),
    stderr: sink((text) => { err += text }),
    env: {},
    out: () => out,
    err: () => err
  }
}

async function purgeIn (io: Io, args: string[]): Promise<number> {
  const { flags, positionals } = parseFlags(inboxCommand, ['purge', ...args])
  return await inboxCommand.run(flags, io, positionals)
}

function delivery (): Delivery {
  const request = signedRequest(actionCompleted())
  return { contentType: 'application/json', signature: request.headers['x-sir-signature'] ?? '', timestamp: request.headers['x-sir-timestamp'] ?? '', rawBody: request.body }
}

/** A SQLite file holding two dead events and one done event. */
async function store (t: Test): Promise<{ path: string, inbox: SqliteInbox }> {
  const dir = mkdtempSync(join(tmpdir(), 'sir-cli-confirm-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const path = join(dir, 'inbox.db')
  const inbox = sqliteInbox({ path, pollIntervalMs: 50 })
  const webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger, inbox, retry: { attempts: 1 } })
  t.teardown(() => webhooks.close())
  let failures = 2
  webhooks.on('action.completed', async function creditPartner () {
    if (failures-- > 0) throw new Error('partner API answered 502')
  })
  for (let index = 0; index < 3; index++) await webhooks.receive(delivery())
  const deadline = Date.now() + 15_000
  while (JSON.stringify(await inbox.counts()) !== JSON.stringify({ pending: 0, done: 1, dead: 2 })) {
    if (Date.now() > deadline) throw new Error('the events did not finish')
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  return { path, inbox }
}

t.test('in a terminal, purge shows the count and deletes nothing unless the operator says yes', async (t) => {
  const { path, inbox } = await store(t)
  const now = new Date().toISOString()
  const args = ['--before', now, '--store', `sqlite:${path}`]
  const question = `delete 1 done and 2 dead event(s) that finished before ${now}? Their ids are forgotten for dedupe (on BullMQ once their dedupe keys expire too), so a late redelivery runs again. [y/N] `

  for (const answer of ['n\n', '\n', 'yess\n', undefined]) {
    const io = terminal(answer)
    t.equal(await purgeIn(io, args), EXIT_FAILED, `${JSON.stringify(answer)}: exit 1`)
    t.equal(io.err(), question + 'sir-webhooks inbox purge: not confirmed; nothing was deleted\n')
    t.equal(io.out(), '')
    t.same(await inbox.counts(), { pending: 0, done: 1, dead: 2 }, `${JSON.stringify(answer)}: nothing deleted`)
  }

  const yes = terminal('y\n')
  t.equal(await purgeIn(yes, args), EXIT_OK)
  t.equal(yes.err(), question)
  t.equal(yes.out(), `purged 1 done and 2 dead event(s) that finished before ${now}\n`)
  t.same(await inbox.counts(), { pending: 0, done: 0, dead: 0 }, 'deleted once the operator said yes')

  const nothing = terminal(undefined)
  t.equal(await purgeIn(nothing, args), EXIT_OK, 'nothing to delete: nothing to ask')
  t.equal(nothing.err(), '')
  t.equal(nothing.out(), `purged 0 done and 0 dead event(s) that finished before ${now}\n`)
})

t.test('in a terminal, --yes skips the question', async (t) => {
  const { path, inbox } = await store(t)
  const io = terminal(undefined)
  t.equal(await purgeIn(io, ['--before', new Date().toISOString(), '--yes', '--store', `sqlite:${path}`]), EXIT_OK)
  t.equal(io.err(), '')
  t.same(await inbox.counts(), { pending: 0, done: 0, dead: 0 })
})

t.test('in a terminal, redrive by filter shows the count and queues nothing unless the operator says yes', async (t) => {
  const { path, inbox } = await store(t)
  const redrive = async (io: Io): Promise<number> => {
    const { flags, positionals } = parseFlags(inboxCommand, ['redrive', '--state', 'dead', '--type', 'action.completed', '--store', `sqlite:${path}`])
    return await inboxCommand.run(flags, io, positionals)
  }
  const question = 're-drive 2 dead event(s) of type action.completed? [y/N] '
  const no = terminal('n\n')
  t.equal(await redrive(no), EXIT_FAILED)
  t.equal(no.err(), question + 'sir-webhooks inbox redrive: not confirmed; nothing was queued\n')
  t.same(await inbox.counts(), { pending: 0, done: 1, dead: 2 }, 'nothing queued')
  const yes = terminal('y\n')
  t.equal(await redrive(yes), EXIT_OK)
  t.equal(yes.err(), question)
  t.equal(yes.out(), 're-drove 2 dead event(s) of type action.completed: queued again, attempts reset; handlers that had succeeded do not run again\n')
  const deadline = Date.now() + 15_000
  while ((await inbox.counts()).done !== 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25))
  t.same(await inbox.counts(), { pending: 0, done: 3, dead: 0 }, 'the running receiver ran them')
})
