import { createServer } from 'node:http'
import express4 from 'express4'
import { expressMiddleware } from '../../src/express/middleware.js'
import type { AdapterHarness } from './harness.js'
import { listen } from './listen.js'

export const express4Harness: AdapterHarness = {
  name: 'express 4',
  async start (webhooks, { path }) {
    const app = express4()
    app.post(path, expressMiddleware(webhooks))
    app.use(express4.json())
    return listen(createServer(app), webhooks, path)
  }
}
