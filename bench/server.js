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

// `--alloc` in bench/run.js: every heap allocation between 'alloc-start' and
// 'alloc-stop' (V8's sampling heap profiler at a 1-byte interval, objects that
// died young included), summed by package and by function.
let allocSession
async function allocStart () {
  const { Session } = await import('node:inspector/promises')
  allocSession = new Session()
  allocSession.connect()
  await allocSession.post('HeapProfiler.startSampling', { samplingInterval: 1, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true })
  return { type: 'alloc-started', received: started.received() }
}

async function allocStop () {
  const { profile } = await allocSession.post('HeapProfiler.stopSampling')
  allocSession.disconnect()
  const frames = new Map()
  const walk = (node) => {
    const { functionName, url, lineNumber } = node.callFrame
    const modules = url.lastIndexOf('node_modules/')
    const where = modules !== -1
      ? url.slice(modules + 'node_modules/'.length).split('/').slice(0, url.includes('node_modules/@') ? 2 : 1).join('/')
      : url.includes('/dist/') ? 'sir-webhooks ' + url.slice(url.indexOf('/dist/') + 1) : url.includes('/bench/') ? 'bench' : url || '(native)'
    frames.set(node.id, { where, name: `${functionName || '(anonymous)'}  ${where}:${lineNumber + 1}` })
    for (const child of node.children) walk(child)
  }
  walk(profile.head)
  const byPackage = {}
  const byFunction = {}
  for (const sample of profile.samples) {
    const frame = frames.get(sample.nodeId)
    byPackage[frame.where] = (byPackage[frame.where] ?? 0) + 1
    byFunction[frame.name] = (byFunction[frame.name] ?? 0) + 1
  }
  return { type: 'alloc', objects: profile.samples.length, byPackage, byFunction, received: started.received() }
}

process.on('message', (message) => {
  if (message === 'alloc-start') {
    allocStart().then((answer) => process.send(answer))
  } else if (message === 'alloc-stop') {
    allocStop().then((answer) => process.send(answer))
  } else if (message === 'usage') {
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
