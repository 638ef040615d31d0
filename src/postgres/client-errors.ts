import type { PoolClient } from 'pg'

/**
 * Hears the errors of a pool client the inbox holds. pg emits 'error' on a client
 * whose connection the server ended (a restart, a failover, an idle-in-transaction
 * timeout, `pg_terminate_backend`), and pg-pool listens only while the client is
 * idle in the pool: unheard, the error is an uncaught exception that ends the
 * process. Heard, the client's next query fails, and the holder discards the
 * client on release. Returns the function that stops listening.
 */
export function hearErrors (client: PoolClient, heard: (error: Error) => void): () => void {
  client.on('error', heard)
  return () => { client.off('error', heard) }
}
