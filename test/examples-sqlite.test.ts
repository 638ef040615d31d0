import Database from 'better-sqlite3'
import { join } from 'node:path'
import t from 'tap'
import { createEvent, sendDelivery } from '../src/testing/index.js'
import { ensureBuilt, runCli } from './cli/helpers.js'
import { startExampleProcess, until } from './helpers/example-process.js'
import { tempDir } from './inbox-contract/scenarios.js'

// examples/sqlite: the quick start with a durable inbox. Its handlers are named,
// so the switch from the in-memory inbox does not throw (issue 21.8); a delivery
// writes the app's row, survives in the inbox file, and the probe says ok.

ensureBuilt()

const SECRET = 'whsec_sqlite_example'

t.test('examples/sqlite: a signed delivery writes the handler\'s row, once; and /health says ok', async (t) => {
  const dir = tempDir(t)
  const inboxPath = join(dir, 'sir-inbox.db')
  const appPath = join(dir, 'app.db')
  const example = await startExampleProcess(t, 'sqlite/server.js', { SIR_WEBHOOK_SECRET: SECRET, SIR_INBOX_PATH: inboxPath, APP_DB_PATH: appPath })
  const url = example.url as string
  const event = createEvent('action.completed', { actionId: 'act_sqlite', tokensDistributed: 12 })
  t.equal((await sendDelivery(url, event, { secret: SECRET })).status, 200)
  const appDb = new Database(appPath, { readonly: true })
  t.teardown(() => appDb.close())
  const rows = (): unknown[] => appDb.prepare('SELECT action_id, tokens FROM credits WHERE event_id = ?').all(event.id)
  await until(async () => rows().length === 1, 30_000, 'the handler\'s row')
  const again = await sendDelivery(url, event, { secret: SECRET })
  t.match(again.body, /"duplicate":true/)
  t.same(rows(), [{ action_id: 'act_sqlite', tokens: 12 }], 'one row')
  const health = await fetch(`${example.internal}/health`)
  t.equal(health.status, 200)
  t.match(await health.json(), { status: 'ok' })
  const stats = await runCli(['inbox', 'stats', '--store', `sqlite:${inboxPath}`, '--json'])
  t.match(JSON.parse(stats.stdout), { done: 1 }, 'the inbox file records the event as done')
  example.kill('SIGTERM')
  t.equal(await example.exit, 0)
})

t.test('examples/sqlite refuses to start without a secret, saying which variable', async (t) => {
  const dir = tempDir(t)
  const example = startExampleProcess(t, 'sqlite/server.js', { SIR_WEBHOOK_SECRET: '', SIR_INBOX_PATH: join(dir, 'inbox.db'), APP_DB_PATH: join(dir, 'app.db') })
  await t.rejects(example, /exited \(1\) before listening:\nSIR_WEBHOOK_SECRET is not set/)
})
