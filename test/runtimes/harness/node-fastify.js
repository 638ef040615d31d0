// The Fastify plugin on the Node version under test, on a free port.
import Fastify from 'fastify'
import { Webhooks } from 'sir-webhooks'
import sirWebhooks from 'sir-webhooks/fastify'
import { recordAction, recorded } from '../apps/actions.js'

const app = Fastify()
const webhooks = new Webhooks({ secret: process.env.SIR_WEBHOOK_SECRET })
webhooks.on('action.completed', recordAction)
await app.register(sirWebhooks, { webhooks })
app.get('/__recorded', async () => ({ recorded }))
const address = await app.listen({ port: 0, host: '127.0.0.1' })
console.log(`READY ${address}/`)
