// docs:start worker
import { env } from 'cloudflare:workers'
import { Webhooks } from 'sir-webhooks'
import { fetchHandler } from 'sir-webhooks/fetch'
import { recordAction } from './actions.js'

// Module scope: one receiver per isolate, so duplicates are caught across requests.
const webhooks = new Webhooks({ secret: env.SIR_WEBHOOK_SECRET })
webhooks.on('action.completed', async function recordCompletedAction (event) { await recordAction(event) })

// Workers call fetch(request, env, ctx): the handler gives ctx.waitUntil each
// delivery's handlers, so they run to the end after the 2xx.
export default { fetch: fetchHandler(webhooks, { path: '/webhooks/sir' }) }
// docs:end
