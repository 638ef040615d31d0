import t from 'tap'
import { MemoryInbox } from '../src/core/memory-inbox.js'
import { runFlowScenarios } from './flow/scenarios.js'

runFlowScenarios(t, { name: 'memory', inbox: () => new MemoryInbox() })
