// The Fastify receiver, runnable as is: `npm start` (or `node examples/fastify/server.js`
// after `npm run build`). Configure with SIR_WEBHOOK_SECRET, PORT and HOST.
import Fastify from 'fastify'
import { Webhooks, sign } from 'sir-webhooks'
import sirWebhooks from 'sir-webhooks/fastify'

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
const url = `${address}/webhooks/sir`

const body = JSON.stringify({
  id: `evt_${Date.now()}`,
  type: 'action.completed',
  createdAt: new Date().toISOString(),
  data: { actionId: 'act_demo', tokensDistributed: 50 }
})
const signed = sign({ secret, rawBody: body })
const quote = (text) => `'${text.replaceAll("'", "'\\''")}'`
process.stdout.write(`
SIR Giving webhook receiver listening on ${url}
${secret === DEVELOPMENT_SECRET ? `Using the embedded development secret ${DEVELOPMENT_SECRET} (set SIR_WEBHOOK_SECRET for real use).\n` : ''}
Send it a signed event (this one is valid for 5 minutes):

  curl -i -X POST ${url} \\
    -H 'content-type: application/json' \\
    -H 'x-sir-timestamp: ${signed.timestamp}' \\
    -H 'x-sir-signature: ${signed.signature}' \\
    --data-binary ${quote(body)}

or sign a fresh one each time with the command line:

  node dist/cli/main.js send --url ${url} --secret ${secret === DEVELOPMENT_SECRET ? secret : '$SIR_WEBHOOK_SECRET'} --type action.completed

Stop with Ctrl+C: accepted events finish before the process exits.
`)

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    app.log.info({ signal }, 'closing: refusing new deliveries, finishing accepted ones')
    app.close().then(() => process.exit(0), (error) => {
      app.log.error({ err: error }, 'close failed')
      process.exit(1)
    })
  })
}
