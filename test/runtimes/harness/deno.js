/* global Deno */
// Serves the Deno docs snippet with Deno.serve on a free port, as `deno serve`
// would. With a secret argument it serves a receiver that reads no environment
// instead, so the run can grant --allow-net alone.
import { Webhooks } from 'sir-webhooks'
import { fetchHandler } from 'sir-webhooks/fetch'
import { recordAction } from '../apps/actions.js'
import { serveRecorded } from './recorded.js'

async function app () {
  const secret = Deno.args[0]
  if (secret === undefined) return (await import('../apps/deno.js')).default
  const webhooks = new Webhooks({ secret })
  webhooks.on('action.completed', recordAction)
  return { fetch: fetchHandler(webhooks, { path: '/webhooks/sir' }) }
}

const { fetch } = await app()
Deno.serve({ port: 0, hostname: '127.0.0.1', onListen: ({ port }) => { console.log(`READY http://127.0.0.1:${port}/`) } }, serveRecorded(fetch))
