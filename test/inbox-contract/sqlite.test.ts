import { join } from 'node:path'
import t from 'tap'
import { sqliteInbox } from '../../src/sqlite/inbox.js'
import { runInboxContract, tempDir } from './scenarios.js'

runInboxContract(t, {
  name: 'sqlite',
  durable: true,
  place: async (t) => {
    const path = join(tempDir(t), 'inbox.db')
    return {
      inbox: () => sqliteInbox({ path, leaseMs: 500, pollIntervalMs: 50 }),
      fixtureEnv: { SIR_STORE: 'sqlite', SIR_DB: path, SIR_LEASE_MS: '500' }
    }
  }
})
