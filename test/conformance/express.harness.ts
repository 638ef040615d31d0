import { createServer } from 'node:http'
import express from 'express'
import express4 from 'express4'
import { expressMiddleware } from '../../src/express/middleware.js'
import type { AdapterHarness } from './harness.js'
import { listen } from './listen.js'

/** One harness per Express major: the same app, written as the docs tell users to write it. */
function expressHarnessFor (name: string, createApp: typeof express | typeof express4): AdapterHarness {
  return {
    name,
    async start (webhooks, { path }) {
      const app = createApp()
      // The route comes before the app's JSON parser.
      app.post(path, expressMiddleware(webhooks))
      app.use(createApp.json())
      return listen(createServer(app), webhooks, path)
    }
  }
}

export const expressHarness = expressHarnessFor('express 5', express)
export const express4Harness = expressHarnessFor('express 4', express4)
