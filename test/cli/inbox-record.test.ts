// `inbox show`: the handlers that finished and the stale flag, as an operator reads
// them (issue 24's "which handlers finished … stale flag"), escaped like every value.
import { join } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { sqliteInbox } from '../../src/sqlite/inbox.js'
import { tempDir } from '../inbox-contract/scenarios.js'
import { delivery, receiver, until } from '../inbox-contract/support.js'
import { ensureBuilt, runCli } from './helpers.js'

ensureBuilt()

function keyed (id: string, second: number): Record<string, unknown> {
  return { id, type: 'action.completed', createdAt: new Date(Date.UTC(2026, 4, 10, 9, 0, second)).toISOString(), data: { actionId: 'act_1' } }
}

t.test('inbox show prints which handlers finished and whether the event ran stale; --json carries both', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  const store = ['--store', `sqlite:${path}`]
  const inbox = sqliteInbox({ path, pollIntervalMs: 50 })
  const webhooks = receiver(inbox, { ordering: { key: (event) => `action:${(event.data as { actionId: string }).actionId}` }, retry: { attempts: 1 } })
  t.teardown(() => webhooks.close())
  webhooks.on('action.completed', async function award (event) { if (event.id === 'evt_cli_old') throw new Error('reversed') }, { name: 'award' })
  webhooks.on('action.completed', async function notify () {}, { name: 'notify' })
  await webhooks.receive(delivery(keyed('evt_cli_new', 9)))
  await webhooks.idle()
  await webhooks.receive(delivery(keyed('evt_cli_old', 3)))
  await until(async () => (await inbox.outcome('evt_cli_old'))?.state === 'dead', 'the stale event to die')

  const old = await runCli(['inbox', 'show', 'evt_cli_old', ...store])
  t.equal(old.code, 0, old.stderr)
  t.match(old.stdout, /\nstale +yes: a newer event of its key was handled first; its handlers were told ordering\.stale\n/)
  t.match(old.stdout, /\nhandled by +notify\n/, 'notify finished; a re-drive runs award only')
  t.match(JSON.parse((await runCli(['inbox', 'show', 'evt_cli_old', ...store, '--json'])).stdout), { state: 'dead', stale: true, handled: ['notify'] })

  const fresh = await runCli(['inbox', 'show', 'evt_cli_new', ...store])
  t.match(fresh.stdout, /\nstale +no\n/)
  t.notMatch(fresh.stdout, /handled by/, 'a done event: every handler finished, nothing to list')

  // A handler key is whatever the app named it: a terminal escape in one is shown, not acted on.
  const db = new Database(path)
  db.prepare("UPDATE sir_webhook_events SET succeeded = ? WHERE id = 'evt_cli_old'").run(JSON.stringify(['notify\u001b[2J']))
  db.close()
  const escaped = await runCli(['inbox', 'show', 'evt_cli_old', ...store])
  t.match(escaped.stdout, /\nhandled by +notify\\x1b\[2J\n/)
  t.notOk(escaped.stdout.includes('\u001b'), 'no escape reaches the terminal')
})
