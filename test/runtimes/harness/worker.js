// The Worker entry esbuild bundles: the docs snippet, plus the record route.
import app from '../apps/worker.js'
import { serveRecorded } from './recorded.js'

export default { fetch: serveRecorded(app.fetch) }
