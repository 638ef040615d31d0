import { createServer } from 'node:http'
import { nodeListener } from '../../src/node/listener.js'
import type { AdapterHarness } from './harness.js'
import { listen } from './listen.js'

export const nodeHarness: AdapterHarness = {
  name: 'node:http',
  async start (webhooks, { path }) {
    return listen(createServer(nodeListener(webhooks, { path })), webhooks, path)
  }
}
