// A ledger that stays right when deliveries come late, twice or out of order:
// `node examples/ordering/server.js` after `npm run build`, then in another shell
//   npx sir-webhooks simulate --url http://127.0.0.1:3000/webhooks/sir \
//     --secret whsec_local_development_only --out-of-order 0.3 --duplicates 0.2
// Configure with SIR_WEBHOOK_SECRET, PORT, HOST, INTERNAL_PORT and INTERNAL_HOST;
// docs/ordering.md explains what ordering promises and what it costs.
import http from 'node:http'
import { Webhooks } from 'sir-webhooks'
import { nodeListener } from 'sir-webhooks/node'
import { prometheusMetrics, serveInternal } from '../internal-server.js'
import { closeOnSignal, exitIfPortBusy } from '../lifecycle.js'
import { printSendInstructions } from '../send-instructions.js'

// An embedded default so the example runs on a fresh machine. Never use it in
// production: set SIR_WEBHOOK_SECRET to the secret SIR Giving showed you.
const DEVELOPMENT_SECRET = 'whsec_local_development_only'
const secret = process.env.SIR_WEBHOOK_SECRET || DEVELOPMENT_SECRET
const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'

const metrics = await prometheusMetrics()
const webhooks = new Webhooks({
  secret,
  ...(metrics === undefined ? {} : { telemetry: { meterProvider: metrics.meterProvider } }),
  ordering: {
    // The key is yours: here every action.* event of one action, by the contract's
    // data.actionId. Events of other types have no key and run unordered.
    key: (event) => event.type.startsWith('action.') && typeof event.data.actionId === 'string' ? `action:${event.data.actionId}` : undefined,
    // A dead-lettered event of an action holds the action's later events until an
    // operator looks (webhooks.ordering.blocked() / unblock(key)).
    onDeadLetter: 'block'
  }
})

// The app's ledger, in memory for the example: per action, what was credited and
// the status of the newest event handled. In an app this is a table, and the
// write is idempotent by event id (delivery is at least once).
const ledger = new Map()

webhooks.on('action.completed', async function creditTokens (event, { ordering, log }) {
  // Stale: an event of this action created later (a reversal, a failure) was
  // already handled, so crediting now would credit a reversed action.
  if (ordering?.stale) {
    log.info({ actionId: event.data.actionId, newestHandledAt: ordering.newestHandledAt }, 'late action.completed after a newer event of the action: not credited')
    return
  }
  ledger.set(event.data.actionId, { status: 'completed', credited: event.data.tokensDistributed })
})

// The contract documents only action.completed's fields; a reversal takes back
// what this ledger credited for the action, whatever else its payload holds.
webhooks.on(['action.reversed', 'action.failed'], async function settleAction (event, { ordering }) {
  if (ordering?.stale) return
  const status = event.type === 'action.reversed' ? 'reversed' : 'failed'
  ledger.set(event.data.actionId, { status, credited: 0 })
})

const listener = nodeListener(webhooks, { path: '/webhooks/sir' })

// GET /ledger shows the totals: credited tokens, and actions by status;
// GET /ledger/actions each action's entry, by actionId.
const server = http.createServer((request, response) => listener(request, response, () => {
  if (request.method === 'GET' && request.url === '/ledger/actions') {
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(Object.fromEntries(ledger)))
    return
  }
  if (request.method === 'GET' && request.url === '/ledger') {
    const byStatus = {}
    let credited = 0
    for (const entry of ledger.values()) {
      byStatus[entry.status] = (byStatus[entry.status] ?? 0) + 1
      credited += entry.credited
    }
    const { ordering } = webhooks.stats()
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ actions: ledger.size, credited, byStatus, ordering }))
    return
  }
  response.writeHead(404).end()
}))

server.listen(port, host, () => {
  const { port: actualPort } = server.address()
  printSendInstructions({ url: `http://${host}:${actualPort}/webhooks/sir`, secret, developmentSecret: DEVELOPMENT_SECRET })
  process.stdout.write(`ledger: http://${host}:${actualPort}/ledger\n`)
  void serveInternal({ webhooks, metrics })
})
server.on('error', (error) => {
  exitIfPortBusy(error, { port, host })
  throw error
})
closeOnSignal(server, webhooks)
