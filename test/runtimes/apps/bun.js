// docs:start bun
import { Webhooks } from 'sir-webhooks'
import { fetchHandler } from 'sir-webhooks/fetch'
import { recordAction } from './actions.js'

const webhooks = new Webhooks({ secret: process.env.SIR_WEBHOOK_SECRET })
webhooks.on('action.completed', async function recordCompletedAction (event) { await recordAction(event) })

// `bun run webhooks.js` serves this (Bun.serve on PORT, default 3000). A
// long-lived process: handlers run on after the response by themselves.
export default { fetch: fetchHandler(webhooks, { path: '/webhooks/sir' }) }
// docs:end
