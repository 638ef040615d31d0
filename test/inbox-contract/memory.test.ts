import t from 'tap'
import { MemoryInbox } from '../../src/core/memory-inbox.js'
import { runInboxContract } from './scenarios.js'

runInboxContract(t, {
  name: 'memory',
  durable: false,
  place: async () => ({ inbox: () => new MemoryInbox() })
})
