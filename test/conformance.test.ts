import { test } from 'tap'
import { adapters } from './conformance/adapters.js'
import { scenarios } from './conformance/scenarios.js'

// Every scenario against every adapter, over a real socket: a behaviour is
// written once in scenarios.ts and holds for Fastify, Express, node:http and fetch.
for (const adapter of adapters) {
  test(adapter.name, async (t) => {
    for (const [name, scenario] of Object.entries(scenarios)) {
      await t.test(name, (child) => scenario(child, adapter))
    }
  })
}
