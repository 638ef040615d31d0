// Child process: starts one server from bench/servers.js and answers the parent
// over IPC, so the parent can read this process's own CPU time and memory.
import { startServer } from './servers.js'

const [name, handler = 'noop', maxQueueSize] = process.argv.slice(2)
const secret = process.env.SIR_BENCH_SECRET
if (process.send === undefined || secret === undefined) {
  console.error('bench/server.js is started by bench/run.js (it needs an IPC channel and SIR_BENCH_SECRET)')
  process.exit(2)
}

// Several names (a,b,c): all in this one process, each on its own port; only the
// smoke run's check that every server answers does this, to start one process, not fifteen.
const names = name.split(',')
const servers = await Promise.all(names.map((one) => startServer(one, {
  secret,
  handler,
  maxQueueSize: maxQueueSize === undefined ? undefined : Number(maxQueueSize)
})))
const started = servers[0]

function usage () {
  const memory = process.memoryUsage()
  return {
    type: 'usage',
    cpu: process.cpuUsage(),
    wallNs: process.hrtime.bigint().toString(),
    rss: memory.rss,
    heapUsed: memory.heapUsed,
    received: started.received(),
    receivedBy: Object.fromEntries(names.map((one, index) => [one, servers[index].received()])),
    queued: started.webhooks?.inbox?.size
  }
}

process.on('message', (message) => {
  if (message === 'usage') {
    process.send(usage())
  } else if (message === 'gc-usage') {
    globalThis.gc?.()
    process.send(usage())
  } else if (message === 'stop') {
    // The receivers may hold never-ending handlers (the memory runs): exit, not close.
    process.exit(0)
  }
})
process.on('disconnect', () => process.exit(0))

process.send({
  type: 'ready',
  port: started.server.address().port,
  ports: Object.fromEntries(names.map((one, index) => [one, servers[index].server.address().port])),
  pid: process.pid
})
