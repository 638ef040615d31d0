/* global Bun */
// Serves the Bun docs snippet with Bun.serve on a free port, as `bun run` would on PORT.
import app from '../apps/bun.js'
import { serveRecorded } from './recorded.js'

const server = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: serveRecorded(app.fetch) })
console.log(`READY ${server.url.href}`)
