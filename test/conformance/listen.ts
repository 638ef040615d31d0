import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Webhooks } from '../../src/index.js'
import type { RunningAdapter } from './harness.js'

/** Listens on 127.0.0.1, port 0; `close()` stops the server, then closes the receiver. Shared by the Node-server harnesses. */
export async function listen (server: Server, webhooks: Webhooks, path: string): Promise<RunningAdapter> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo
  let closing: Promise<void> | undefined
  return {
    url: `http://127.0.0.1:${port}${path}`,
    close: () => (closing ??= closeAll(server, webhooks))
  }
}

async function closeAll (server: Server, webhooks: Webhooks): Promise<void> {
  const closed = new Promise<void>((resolve) => { server.close(() => { resolve() }) })
  // Keep-alive sockets from the test's fetch would otherwise hold close() open.
  server.closeIdleConnections()
  await Promise.all([closed, webhooks.close()])
}
