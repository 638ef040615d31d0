import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { Webhooks, type Delivery } from '../../src/index.js'
import { sqliteInbox, type SqliteInbox } from '../../src/sqlite/inbox.js'
import { captureLogs } from '../helpers/logs.js'
import { SECRET, actionCompleted, signedRequest, type Envelope } from '../helpers/deliveries.js'
import { ensureBuilt, runCli } from './helpers.js'

ensureBuilt()

// Stored data an attacker controls: a type that clears the screen and prints fake
// text, an id with a C1 CSI (one character on some terminals) and DEL, an error
// that retitles the window.
const HOSTILE_TYPE = 'evil\u001b[2J\u001b[H\u001b[32mALL GOOD'
const HOSTILE_ID_PART = '\u009b31m\u007f'
const HOSTILE_ERROR = 'boom \u001b]0;pwned\u0007 \u0085done'
// Any C0 control but newline, DEL, or C1: what must never reach the terminal.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/

async function until (predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

function delivery (body: Envelope): Delivery {
  const request = signedRequest(body)
  return { contentType: 'application/json', signature: request.headers['x-sir-signature'] ?? '', timestamp: request.headers['x-sir-timestamp'] ?? '', rawBody: request.body }
}

interface Store {
  path: string
  store: string[]
  inbox: SqliteInbox
  webhooks: Webhooks
}

/**
 * A SQLite inbox holding `dead` dead letters (its one handler failed its one
 * attempt) and `done` done events, its receiver still running.
 */
async function storeWith (t: Test, { dead, done = 0, type = 'action.completed', error = 'partner API answered 502', idPrefix = 'evt_' }: { dead: number, done?: number, type?: string, error?: string, idPrefix?: string }): Promise<Store> {
  const dir = mkdtempSync(join(tmpdir(), 'sir-cli-safety-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const path = join(dir, 'inbox.db')
  const inbox = sqliteInbox({ path, pollIntervalMs: 50 })
  let broken = true
  const webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger, inbox, retry: { attempts: 1 } })
  t.teardown(() => webhooks.close())
  webhooks.onAny(async function creditPartner () {
    if (broken) throw new Error(error)
  }, { name: 'creditPartner' })
  const ids: string[] = []
  for (let index = 0; index < dead; index++) {
    const event = actionCompleted({ type, id: `${idPrefix}${index}_${Date.now()}` })
    ids.push(event.id)
    t.equal((await webhooks.receive(delivery(event))).code, 'ACCEPTED')
  }
  await until(async () => (await inbox.counts()).dead === dead, 'the events to die')
  // From here on the handler succeeds: the done events, and any re-driven event.
  broken = false
  for (let index = 0; index < done; index++) t.equal((await webhooks.receive(delivery(actionCompleted()))).code, 'ACCEPTED')
  await until(async () => (await inbox.counts()).done === done, 'the others to be done')
  return { path, store: ['--store', `sqlite:${path}`], inbox, webhooks }
}

t.test('inbox dead and show print stored control characters escaped, and --json as it was', async (t) => {
  const { store } = await storeWith(t, { dead: 1, type: HOSTILE_TYPE, error: HOSTILE_ERROR, idPrefix: `evt_${HOSTILE_ID_PART}_` })

  const dead = await runCli(['inbox', 'dead', ...store])
  t.equal(dead.code, 0, dead.stderr)
  t.notMatch(dead.stdout, CONTROL, 'no control character reaches the terminal')
  t.match(dead.stdout, 'evil\\x1b[2J\\x1b[H\\x1b[32mALL GOOD', 'the type, its escapes shown')
  t.match(dead.stdout, /evt_\\x9b31m\\x7f_0_\d+/, 'the id, C1 and DEL shown')
  t.match(dead.stdout, 'boom \\x1b]0;pwned\\x07 \\x85done', 'the error, OSC and BEL shown')

  const json = await runCli(['inbox', 'dead', '--json', ...store])
  t.notMatch(json.stdout, CONTROL, '--json: no control character reaches the terminal either (DEL and C1 as \\u00XX)')
  const [record] = JSON.parse(json.stdout) as Array<{ id: string, type: string, lastError: string }>
  t.equal(record?.type, HOSTILE_TYPE, '--json keeps the stored value exactly')
  t.match(record?.id, HOSTILE_ID_PART)
  const id = record?.id ?? ''

  const shown = await runCli(['inbox', 'show', id, ...store])
  t.equal(shown.code, 0, shown.stderr)
  t.notMatch(shown.stdout, CONTROL, 'no control character reaches the terminal')
  t.match(shown.stdout, /^type\s+evil\\x1b\[2J\\x1b\[H\\x1b\[32mALL GOOD$/m)
  t.match(shown.stdout, /^last error\s+creditPartner: Error: boom \\x1b\]0;pwned\\x07 \\x85done$/m)
  // SQLite keeps the body: it is shown as received, indented under its label.
  t.match(shown.stdout, /^body \(as received\):\n {2}\{"id":/m, 'the body, indented under its label')
  t.match(shown.stdout, '"type":"evil\\u001b[2J', 'the sender\'s JSON escapes of C0 shown as sent')
  t.match(shown.stdout, '\\x9b31m\\x7f', 'and printable() the C1 and DEL JSON leaves raw')

  const missing = await runCli(['inbox', 'show', 'evt_\u001b[2Jnope', ...store])
  t.equal(missing.code, 1)
  t.notMatch(missing.stderr, CONTROL)
  t.match(missing.stderr, 'no event with id "evt_\\x1b[2Jnope"')
})

t.test('inbox dead --limit says that more exist, and how many', async (t) => {
  const { store } = await storeWith(t, { dead: 3 })
  const cut = await runCli(['inbox', 'dead', '--limit', '2', ...store])
  t.equal(cut.code, 0, cut.stderr)
  t.equal(cut.stdout.split('\n').filter((line) => line.startsWith('evt_')).length, 2, 'two rows')
  t.match(cut.stdout, /\nshowing the oldest 2 of 3 dead letters; raise --limit to see more\n$/)
  const all = await runCli(['inbox', 'dead', '--limit', '3', ...store])
  t.equal(all.stdout.split('\n').filter((line) => line.startsWith('evt_')).length, 3)
  t.notMatch(all.stdout, 'showing', 'no note when every one is shown')
  const json = JSON.parse((await runCli(['inbox', 'dead', '--limit', '2', '--json', ...store])).stdout) as unknown[]
  t.equal(json.length, 2, '--json: the same array as before, --limit long')
})

t.test('inbox redrive --all counts first, needs --yes outside a terminal, then re-drives several dead events, and they run', async (t) => {
  const { store, inbox } = await storeWith(t, { dead: 3 })
  const unconfirmed = await runCli(['inbox', 'redrive', '--all', ...store])
  t.equal(unconfirmed.code, 2, 'more than one, no terminal to ask in, no --yes: refused')
  t.match(unconfirmed.stderr, /--yes/)
  const counted = await runCli(['inbox', 'redrive', '--all', '--dry-run', ...store])
  t.equal(counted.code, 0, counted.stderr)
  t.match(counted.stdout, /\b3\b/, 'the dry run says how many')
  t.same(await inbox.counts(), { pending: 0, done: 0, dead: 3 }, 'and neither queued anything')
  const redrive = await runCli(['inbox', 'redrive', '--all', '--yes', ...store])
  t.equal(redrive.code, 0, redrive.stderr)
  t.match(redrive.stdout, /^re-drove 3 dead /)
  await until(async () => (await inbox.counts()).done === 3, 'the re-driven events to be done')
  t.same(await inbox.counts(), { pending: 0, done: 3, dead: 0 }, 'every one ran again and succeeded')
})

t.test('inbox purge: ISO 8601 in the past, --yes outside a terminal, --dry-run deletes nothing', async (t) => {
  const { store, inbox } = await storeWith(t, { dead: 3, done: 2 })
  const all = { pending: 0, done: 2, dead: 3 }
  t.same(await inbox.counts(), all)
  const now = new Date().toISOString()

  const refused: Array<[string[], RegExp]> = [
    [['--before', now], /add --yes to confirm \(no terminal to ask in\), or --dry-run to count them; nothing was deleted/],
    [['--before', '0', '--yes'], /--before must be an ISO 8601 date/],
    [['--before', '2026', '--yes'], /--before must be an ISO 8601 date/],
    [['--before', 'yesterday', '--yes'], /--before must be an ISO 8601 date/],
    [['--before', '2026-01-01T10:00', '--yes'], /a time needs Z or an offset/],
    [['--before', '2026-02-30', '--yes'], /--before is not a calendar date/],
    [['--before', '2026-01-01T24:00:00Z', '--yes'], /--before is not a calendar date/],
    [['--before', '2999-01-01', '--yes'], /--before must not be in the future, got 2999-01-01T00:00:00\.000Z/],
    [['--before', new Date(Date.now() + 120_000).toISOString(), '--yes'], /--before must not be in the future/]
  ]
  for (const [args, message] of refused) {
    const result = await runCli(['inbox', 'purge', ...args, ...store])
    t.equal(result.code, 2, args.join(' '))
    t.match(result.stderr, message, args.join(' '))
    t.equal(result.stdout, '', 'prints nothing on stdout')
  }
  t.same(await inbox.counts(), all, 'none of them deleted anything')

  const dry = await runCli(['inbox', 'purge', '--before', now, '--dry-run', ...store])
  t.equal(dry.code, 0, dry.stderr)
  t.equal(dry.stdout, `would purge 2 done and 3 dead event(s) that finished before ${now}; deleted nothing (dry run)\n`)
  const dryJson = JSON.parse((await runCli(['inbox', 'purge', '--before', now, '--dry-run', '--yes', '--json', ...store])).stdout) as unknown
  t.same(dryJson, { before: now, dryRun: true, done: 2, dead: 3 }, '--dry-run wins over --yes')
  t.same(await inbox.counts(), all, 'a dry run deletes nothing')

  const old = await runCli(['inbox', 'purge', '--before', '2026-01-01', '--yes', ...store])
  t.equal(old.code, 0, old.stderr)
  t.equal(old.stdout, 'purged 0 done and 0 dead event(s) that finished before 2026-01-01T00:00:00.000Z\n')

  const purged = await runCli(['inbox', 'purge', '--before', now, '--yes', ...store])
  t.equal(purged.code, 0, purged.stderr)
  t.equal(purged.stdout, `purged 2 done and 3 dead event(s) that finished before ${now}\n`)
  t.same(await inbox.counts(), { pending: 0, done: 0, dead: 0 }, 'the dead and done events are gone')
  t.same(await inbox.deadLetters(), [])
})

t.test('purge({ before }) removes dead and done events finished before, and keeps the later ones', async (t) => {
  const { inbox } = await storeWith(t, { dead: 2, done: 1 })
  const between = new Date()
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.same(await inbox.purge({ before: new Date(between.getTime() - 60_000) }), { done: 0, dead: 0 }, 'nothing finished a minute earlier')
  t.same(await inbox.purge({ before: between, dryRun: true }), { done: 1, dead: 2 }, 'a dry run counts')
  t.same(await inbox.counts(), { pending: 0, done: 1, dead: 2 }, 'and deletes nothing')
  t.same(await inbox.purge({ before: between }), { done: 1, dead: 2 })
  t.same(await inbox.counts(), { pending: 0, done: 0, dead: 0 })
})

t.test('inbox <subcommand> --help gives each subcommand its own help', async (t) => {
  const texts = new Map<string, string>()
  for (const subcommand of ['stats', 'dead', 'show', 'redrive', 'purge']) {
    const help = await runCli(['inbox', subcommand, '--help'])
    t.equal(help.code, 0)
    t.match(help.stdout, new RegExp(`^Usage: sir-webhooks inbox ${subcommand} `), `${subcommand}: its own usage line`)
    t.match(help.stdout, /Exit codes:/)
    texts.set(subcommand, help.stdout)
  }
  t.equal(new Set(texts.values()).size, 5, 'five different texts')
  t.match(texts.get('dead'), '--limit N')
  t.notMatch(texts.get('stats'), '--limit')
  t.match(texts.get('redrive'), '--all')
  const purge = texts.get('purge') ?? ''
  for (const words of ['--dry-run', '--yes', 'ISO 8601', 'Purging an event forgets its id for dedupe', 'On SQLite and Postgres', 'on BullMQ']) t.match(purge, words)
  const overview = await runCli(['inbox', '--help'])
  t.match(overview.stdout, /^Usage: sir-webhooks inbox <subcommand>/)
  t.match(overview.stdout, 'Purging an event forgets its id for dedupe')
  t.equal((await runCli(['inbox', 'constructor', '--help'])).stdout, overview.stdout, 'an unknown word gets the overview')
})

t.test('flags given to the wrong subcommand are refused before the store is opened', async (t) => {
  for (const [args, message] of [
    [['inbox', 'stats', '--yes'], '--yes is for inbox purge and redrive only'],
    [['inbox', 'stats', '--state', 'dead'], '--state is for inbox redrive only'],
    [['inbox', 'dead', '--handler', 'audit'], '--handler is for inbox redrive, pause and resume only'],
    [['inbox', 'dead', '--before', '2026-01-01'], '--before is for inbox purge only'],
    [['inbox', 'stats', '--limit', '2'], '--limit is for inbox dead only'],
    [['inbox', 'show', 'evt_1', '--all'], '--all is for inbox redrive only'],
    [['inbox', 'stats', '--schema', 'Bad-Name'], '--schema must be a lower-case SQL name'],
    [['inbox', 'stats', '--schema', 'x\u001b[2J'], '--schema must be a lower-case SQL name of at most 50 characters (letters, digits, _), such as sir_webhooks; got "x\\x1b[2J"']
  ] as const) {
    const result = await runCli([...args, '--store', 'sqlite:/nonexistent.db'])
    t.equal(result.code, 2, args.join(' '))
    t.match(result.stderr, message)
  }
})
