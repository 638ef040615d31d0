import { join } from 'node:path'
import t from 'tap'
import { sqliteInbox } from '../src/sqlite/inbox.js'
import { tempDir } from './inbox-contract/scenarios.js'
import { runOrderingProperty } from './ordering/property.js'
import { runOrderingScenarios } from './ordering/scenarios.js'

let files = 0
const dir = tempDir(t)
const freshInbox = (): ReturnType<typeof sqliteInbox> => sqliteInbox({ path: join(dir, `ordering-${files++}.db`), pollIntervalMs: 50 })

runOrderingProperty(t, { name: 'sqlite', inbox: freshInbox }, 6)
runOrderingScenarios(t, { name: 'sqlite', inbox: freshInbox, durable: true })
