import t from 'tap'
import { MemoryInbox } from '../src/index.js'
import { runInboxContract } from './inbox-contract/scenarios.js'

runInboxContract(t, {
  name: 'memory',
  durable: false,
  place: async () => ({ inbox: () => new MemoryInbox() })
})
