import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import t from 'tap'
import { sqliteInbox } from '../src/sqlite/inbox.js'
import { tempDir } from './inbox-contract/scenarios.js'

const driver = createRequire(import.meta.url).resolve('better-sqlite3')

t.test('a start waits for another process that holds the file\'s write lock (its own start, an upgrade), instead of failing', async (t) => {
  const path = join(tempDir(t), 'inbox.db')
  // Another process, as a second receiver opening the same new file a moment earlier: it holds the write lock for 400 ms.
  const holder = spawn(process.execPath, ['-e', `
    const Database = require(${JSON.stringify(driver)})
    const db = new Database(${JSON.stringify(path)})
    db.pragma('journal_mode = WAL')
    db.exec('BEGIN IMMEDIATE; CREATE TABLE held (x)')
    process.stdout.write('locked\\n')
    setTimeout(() => { db.exec('COMMIT'); db.close() }, 400)`], { stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise<void>((resolve) => { holder.stdout.once('data', () => { resolve() }) })
  const inbox = sqliteInbox({ path })
  t.teardown(() => inbox.close(0))
  t.equal(await inbox.counts().then((counts) => counts.pending), 0, 'opened once the lock was released')
  await new Promise((resolve) => holder.once('exit', resolve))
})
