// The Fastify receiver, runnable as is: `npm start` (or `node examples/fastify/server.js`
// after `npm run build`). Configure with SIR_WEBHOOK_SECRET, PORT and HOST.
import Fastify from 'fastify'
import { Webhooks } from 'sir-webhooks'
import sirWebhooks from 'sir-webhooks/fastify'
import { printSendInstructions } from '../send-instructions.js'

// An embedded default so the example runs on a fresh machine. Never use it in
// production: set SIR_WEBHOOK_SECRET to the secret SIR Giving showed you.
const DEVELOPMENT_SECRET = 'whsec_local_development_only'
const secret = process.env.SIR_WEBHOOK_SECRET || DEVELOPMENT_SECRET
const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'

const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' } })
const webhooks = new Webhooks({ secret, logger: app.log })

webhooks.on('action.completed', async (event, { log, attempt }) => {
  // Handlers must be idempotent: delivery is at-least-once and may be out of order.
  log.info({ actionId: event.data.actionId, tokensDistributed: event.data.tokensDistributed, attempt }, 'action completed: tokens distributed')
})
webhooks.on(['token_pool.low_balance', 'token_pool.depleted'], async (event, { log }) => {
  log.warn({ data: event.data }, 'token pool needs attention')
})
webhooks.onAny(async (event, { log }) => {
  log.info('event handled')
})
webhooks.onError((error, event, info) => {
  app.log.error({ err: error, event: { id: event.id, type: event.type }, handler: info.handler }, 'handler failed for good')
})

await app.register(sirWebhooks, { webhooks, path: '/webhooks/sir' })
const address = await app.listen({ port, host })

printSendInstructions({ url: `${address}/webhooks/sir`, secret, developmentSecret: DEVELOPMENT_SECRET })

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    // app.close() runs the plugin's onClose hook, which drains the receiver.
    app.log.info({ signal }, 'closing: refusing new deliveries, finishing accepted ones')
    app.close().then(() => process.exit(0), (error) => {
      app.log.error({ err: error }, 'close failed')
      process.exit(1)
    })
  })
}
