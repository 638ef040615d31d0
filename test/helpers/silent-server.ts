import { createServer, type Socket } from 'node:net'
import type { Test } from 'tap'

/**
 * A TCP server that takes connections and never answers: a store that is up to
 * the kernel and silent to its client. Something that waited for it would wait
 * for ever, so a test can show a call did not wait without timing it.
 */
export async function silentServer (t: Test): Promise<number> {
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise<void>((resolve) => server.close(() => { resolve() }))
  })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('silentServer: no port')
  return address.port
}
