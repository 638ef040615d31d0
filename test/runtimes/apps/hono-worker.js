// docs:start hono-worker
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { Webhooks } from 'sir-webhooks'
import { fetchHandler } from 'sir-webhooks/fetch'
import { recordAction } from './actions.js'

const webhooks = new Webhooks({ secret: env.SIR_WEBHOOK_SECRET })
webhooks.on('action.completed', async function recordCompletedAction (event) { await recordAction(event) })
const handle = fetchHandler(webhooks)

const app = new Hono()
// The untouched request, and Hono's ExecutionContext so waitUntil keeps the handlers alive.
app.post('/webhooks/sir', (c) => handle(c.req.raw, c.env, c.executionCtx))
export default app
// docs:end
