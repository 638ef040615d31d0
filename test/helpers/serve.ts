import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'

/**
 * Listens on 127.0.0.1, port 0, for one test and returns the base URL. The
 * teardown drops every connection (keep-alive ones would hold close() open),
 * closes the server, then the receiver, if one is given.
 */
export async function serveForTest (t: Test, server: Server, receiver?: { close (): Promise<void> }): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
    await receiver?.close()
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}
