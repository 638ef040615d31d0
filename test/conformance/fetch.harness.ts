import type { Server } from 'node:http'
import { createAdaptorServer } from '@hono/node-server'
import { fetchHandler } from '../../src/fetch/handler.js'
import type { AdapterHarness } from './harness.js'
import { listen } from './listen.js'

export const fetchHarness: AdapterHarness = {
  name: 'fetch',
  targetNormalized: true,
  async start (webhooks, { path }) {
    // @hono/node-server turns each node:http request into a Web Request, as a
    // fetch runtime would hand one over. Global Request/Response are left alone:
    // the other adapters' tests share this process.
    const handle = fetchHandler(webhooks, { path })
    const server = createAdaptorServer({ fetch: (request) => handle(request), overrideGlobalObjects: false }) as Server
    return listen(server, webhooks, path)
  }
}
