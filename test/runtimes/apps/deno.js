/* global Deno */
// docs:start deno
import { Webhooks } from 'sir-webhooks'
import { fetchHandler } from 'sir-webhooks/fetch'
import { recordAction } from './actions.js'

const webhooks = new Webhooks({ secret: Deno.env.get('SIR_WEBHOOK_SECRET') })
webhooks.on('action.completed', async function recordCompletedAction (event) { await recordAction(event) })

// `deno serve --allow-net --allow-env=SIR_WEBHOOK_SECRET webhooks.js`: the
// receiver needs no other permission. A long-lived process: handlers run on
// after the response by themselves.
export default { fetch: fetchHandler(webhooks, { path: '/webhooks/sir' }) }
// docs:end
