// A TCP port the kernel says is free now, for servers started by tests and benchmarks.
import { createServer } from 'node:net'

export async function freePort () {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => { resolve(typeof address === 'object' && address !== null ? address.port : 0) })
    })
  })
}
