// The Worker entry esbuild bundles: the Hono docs snippet, plus the record route.
import app from '../apps/hono-worker.js'
import { serveRecorded } from './recorded.js'

export default { fetch: serveRecorded(app.fetch) }
