import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import pg from 'pg'
import type { Test } from 'tap'
import type { Inbox } from '../../src/index.js'
import { bullmqInbox } from '../../src/bullmq/inbox.js'
import { postgresInbox } from '../../src/postgres/inbox.js'
import { sqliteInbox } from '../../src/sqlite/inbox.js'
import { freshSchema, type PostgresForTests } from '../helpers/postgres.js'
import type { RedisForTests } from '../helpers/redis.js'
import { tempDir } from '../inbox-contract/scenarios.js'

export type Store = 'sqlite' | 'postgres' | 'bullmq'

/**
 * For the dashboard tests that run on every store: a fresh inbox on `store`
 * (a file, a schema dropped at the end, a queue), or why there is none here
 * (outside CI only). `name` tells the schemas and queues of one file apart.
 */
export function storeInboxes (postgres: PostgresForTests, redis: RedisForTests, name: string): (t: Test, store: Store) => Inbox | string {
  return (t, store) => {
    switch (store) {
      case 'sqlite':
        return sqliteInbox({ path: join(tempDir(t), 'inbox.db') })
      case 'postgres': {
        if (postgres.url === undefined) return postgres.reason
        const schema = freshSchema(`sir_${name.replaceAll('-', '_')}`)
        const url = postgres.url
        t.teardown(async () => {
          const admin = new pg.Client({ connectionString: url })
          await admin.connect()
          await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
          await admin.end()
        })
        return postgresInbox({ connectionString: url, schema })
      }
      case 'bullmq':
        if (redis.url === undefined) return redis.reason
        return bullmqInbox({ connection: redis.connection, queueName: `${name}-${randomUUID()}` })
    }
  }
}
