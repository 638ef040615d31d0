// Child process of bench/inboxes.js: one sir-webhooks node:http receiver on the
// inbox named in argv, a no-op handler that counts the events it sees. Answers
// the parent over IPC with how many events were handled. SIR_BENCH_NO_HANDLER=1
// registers no handler: an accept-only instance, for what accepts cost alone.
import http from 'node:http'
import { PATH } from './deliveries.js'
import { receiverInbox } from './receiver-inbox.js'

const [kind, target] = process.argv.slice(2)
const secret = process.env.SIR_BENCH_SECRET
if (process.send === undefined || secret === undefined || kind === undefined) {
  console.error('bench/inbox-server.js is started by bench/inboxes.js')
  process.exit(2)
}


const { Webhooks } = await import('../dist/index.js')
const { nodeListener } = await import('../dist/node/listener.js')
// Postgres: a schema of its own unless given (receivers sharing one); BullMQ: a queue of its own.
const inbox = await receiverInbox(kind, target, kind === 'bullmq' ? `bench-${process.pid}` : process.env.SIR_BENCH_SCHEMA ?? `bench_${process.pid}`)
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
