import t from 'tap'
import { MemoryInbox } from '../src/core/memory-inbox.js'
import { runOrderingProperty } from './ordering/property.js'
import { runOrderingScenarios } from './ordering/scenarios.js'

runOrderingProperty(t, { name: 'memory', inbox: () => new MemoryInbox() })
runOrderingScenarios(t, { name: 'memory', inbox: () => new MemoryInbox() })
