// Child process of bench/inboxes.js: one sir-webhooks node:http receiver on the
// inbox named in argv, a no-op handler that counts the events it sees. Answers
// the parent over IPC with how many events were handled. SIR_BENCH_NO_HANDLER=1
// registers no handler: an accept-only instance, for what accepts cost alone.
import http from 'node:http'
import { PATH } from './deliveries.js'

const [kind, target] = process.argv.slice(2)
const secret = process.env.SIR_BENCH_SECRET
if (process.send === undefined || secret === undefined || kind === undefined) {
  console.error('bench/inbox-server.js is started by bench/inboxes.js')
  process.exit(2)
}

async function makeInbox () {
  switch (kind) {
    case 'memory': return undefined
    case 'sqlite': {
      const { sqliteInbox } = await import('../dist/sqlite/inbox.js')
      return sqliteInbox({ path: target })
    }
    case 'postgres': {
      const { postgresInbox } = await import('../dist/postgres/inbox.js')
      return postgresInbox({ connectionString: target, schema: process.env.SIR_BENCH_SCHEMA ?? `bench_${process.pid}` })
    }
    case 'bullmq': {
      const { bullmqInbox } = await import('../dist/bullmq/inbox.js')
      const url = new URL(target)
      return bullmqInbox({ connection: { host: url.hostname, port: Number(url.port) }, queueName: `bench-${process.pid}` })
    }
    default: throw new Error(`unknown inbox ${kind}`)
  }
}

const { Webhooks } = await import('../dist/index.js')
const { nodeListener } = await import('../dist/node/listener.js')
const inbox = await makeInbox()
// A backlog bound far above what a run can build: a 503 here would be the inbox
// refusing, not the bound, and the drain time says whether handlers keep up.
const { pino } = await import('pino')
const webhooks = new Webhooks({ secret, maxQueueSize: 1_000_000, logger: pino({ level: 'warn' }), ...(inbox === undefined ? {} : { inbox }) })
let handled = 0
if (process.env.SIR_BENCH_NO_HANDLER !== "1") webhooks.onAny(async function count () { handled += 1 })
const server = http.createServer(nodeListener(webhooks, { path: PATH }))
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))

process.on('message', (message) => {
  if (message === 'handled') process.send({ type: 'handled', handled })
  else if (message === 'stop') {
    server.close()
    void webhooks.close().finally(() => process.exit(0))
  }
})
process.on('disconnect', () => process.exit(0))
process.send({ type: 'ready', port: server.address().port })
