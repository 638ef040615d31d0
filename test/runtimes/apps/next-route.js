// docs:start next-route
// app/webhooks/sir/route.js
import { after } from 'next/server'
import { Webhooks } from 'sir-webhooks'
import { fetchHandler } from 'sir-webhooks/fetch'
import { recordAction } from './actions.js'

const webhooks = new Webhooks({ secret: process.env.SIR_WEBHOOK_SECRET })
webhooks.on('action.completed', async function recordCompletedAction (event) { await recordAction(event) })

// after() keeps the function alive until the handlers have finished, where the
// platform would otherwise stop it with the response (Vercel: or waitUntil from @vercel/functions).
export const POST = fetchHandler(webhooks, { waitUntil: after })
// docs:end
