// Ordering on the Postgres inbox: the property harness and the fixed scenarios
// every inbox with an ordering store passes, on a fresh schema each.
import t from 'tap'
import type { Inbox } from '../src/index.js'
import { postgresInbox, type PostgresInbox } from '../src/postgres/inbox.js'
import { freshSchema, postgresForTests } from './helpers/postgres.js'
import { runOrderingProperty } from './ordering/property.js'
import { runOrderingScenarios } from './ordering/scenarios.js'

/**
 * The inbox with an `idle()` for the shared harness: resolves once the schema
 * holds no pending event. The Postgres inbox has none of its own (its work is the
 * schema's, shared with other receivers); the harness waits on `webhooks.idle()`.
 */
function withIdle (inbox: PostgresInbox): Inbox {
  const idle = async (): Promise<void> => {
    for (;;) {
      if ((await inbox.counts()).pending === 0) return
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  return new Proxy(inbox, {
    get (target, property) {
      if (property === 'idle') return idle
      const value: unknown = Reflect.get(target, property, target)
      return typeof value === 'function' ? value.bind(target) : value
    }
  }) as Inbox
}

const postgres = await postgresForTests(t)
if (postgres.url === undefined) {
  t.plan(0, `Postgres ordering skipped: ${postgres.reason}`)
} else {
  const connectionString = postgres.url
  const inbox = (): Inbox => withIdle(postgresInbox({ connectionString, schema: freshSchema('ord'), pollIntervalMs: 100 }))
  runOrderingProperty(t, { name: 'postgres', inbox }, 4)
  runOrderingScenarios(t, { name: 'postgres', inbox, durable: true })
}
