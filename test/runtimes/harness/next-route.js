// The Next.js route handler snippet on Node, served by @hono/node-server on a
// free port and called as Next calls it: POST(request, { params }). esbuild
// bundles it with next/server pointed at ./next-server.js.
import { serve } from '@hono/node-server'
import { POST } from '../apps/next-route.js'
import { afterCounts } from './next-server.js'
import { serveRecorded } from './recorded.js'

const fetch = serveRecorded((request) => POST(request, { params: Promise.resolve({}) }), () => ({ waitUntil: afterCounts() }))
serve({ fetch, port: 0, hostname: '127.0.0.1' }, (info) => { console.log(`READY http://127.0.0.1:${info.port}/`) })
