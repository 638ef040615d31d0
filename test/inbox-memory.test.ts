import t from 'tap'
import { MemoryInbox } from '../src/core/memory-inbox.js'
import { runInboxContract } from './inbox-contract/scenarios.js'

runInboxContract(t, {
  name: 'memory',
  durable: false,
  place: async () => ({ inbox: () => new MemoryInbox() })
})
