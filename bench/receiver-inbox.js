// The inbox a benchmark receiver child runs on: `kind` (memory, sqlite, postgres,
// bullmq) at `target` (a file path or a server URL, from bench/stores.js), every
// option at its default. `name` is the Postgres schema or the BullMQ queue:
// receivers given one name share one backlog.
export async function receiverInbox (kind, target, name) {
  switch (kind) {
    case 'memory': return undefined
    case 'sqlite': {
      const { sqliteInbox } = await import('../dist/sqlite/inbox.js')
      return sqliteInbox({ path: target })
    }
    case 'postgres': {
      const { postgresInbox } = await import('../dist/postgres/inbox.js')
      return postgresInbox({ connectionString: target, schema: name })
    }
    case 'bullmq': {
      const { bullmqInbox } = await import('../dist/bullmq/inbox.js')
      const url = new URL(target)
      return bullmqInbox({ connection: { host: url.hostname, port: Number(url.port) }, queueName: name })
    }
    default: throw new Error(`unknown inbox ${kind}`)
  }
}
