import type pg from 'pg'
import type { Test } from 'tap'
import { Webhooks, type WebhooksOptions } from '../../src/index.js'
import type { PostgresInbox } from '../../src/postgres/inbox.js'
import { SECRET, captureLogger } from '../inbox-contract/support.js'

export type PostgresReceiver = Webhooks<PostgresInbox> & { log: ReturnType<typeof captureLogger>['entries'] }

/**
 * What the Postgres inbox tests share: receivers closed when their test ends,
 * and user tables for handlers to write to through `transaction`, queried
 * through `admin`, a pool of the test's own.
 */
export function postgresTestTables (admin: pg.Pool): {
  receiverWith: (t: Test, inbox: PostgresInbox, options?: Partial<WebhooksOptions<PostgresInbox>>) => PostgresReceiver
  userTable: (t: Test, schema: string) => Promise<string>
  rowsFor: (table: string, id: string) => Promise<string[]>
} {
  return {
    receiverWith (t, inbox, options = {}) {
      const logger = captureLogger()
      const webhooks = new Webhooks({ secret: SECRET, retry: { attempts: 5, minDelayMs: 5, maxDelayMs: 20 }, closeGraceMs: 2_000, logger, inbox, ...options })
      t.teardown(() => webhooks.close())
      return Object.assign(webhooks, { log: logger.entries })
    },
    /** A user table with no unique constraint: a handler that ran twice, or whose rolled-back writes were kept, leaves two rows. */
    async userTable (t, schema) {
      const table = `${schema}_credits`
      await admin.query(`CREATE TABLE ${table} (event_id text NOT NULL, handler text NOT NULL)`)
      t.teardown(() => admin.query(`DROP TABLE IF EXISTS ${table}; DROP SCHEMA IF EXISTS ${schema} CASCADE`))
      return table
    },
    async rowsFor (table, id) {
      const { rows } = await admin.query<{ handler: string }>(`SELECT handler FROM ${table} WHERE event_id = $1 ORDER BY handler`, [id])
      return rows.map((row) => row.handler)
    }
  }
}
