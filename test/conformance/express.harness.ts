import { createServer } from 'node:http'
import express from 'express'
import { expressMiddleware } from '../../src/express/middleware.js'
import type { AdapterHarness } from './harness.js'
import { listen } from './listen.js'

export const expressHarness: AdapterHarness = {
  name: 'express 5',
  async start (webhooks, { path }) {
    const app = express()
    // The route comes before the app's JSON parser, as the docs tell users to write it.
    app.post(path, expressMiddleware(webhooks))
    app.use(express.json())
    return listen(createServer(app), webhooks, path)
  }
}
