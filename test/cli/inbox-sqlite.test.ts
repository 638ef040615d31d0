import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sqliteInbox } from '../../src/sqlite/inbox.js'
import { ensureBuilt } from './helpers.js'
import { operatorFlow } from './inbox-flow.js'

ensureBuilt()

t.test('SQLite: lists, shows, re-drives and purges a dead letter', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sir-cli-inbox-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const path = join(dir, 'inbox.db')
  await operatorFlow(t, ['--store', `sqlite:${path}`], sqliteInbox({ path, pollIntervalMs: 50 }))
})
