import { Queue, Job } from 'bullmq'
import { Redis } from 'ioredis'
const url = 'redis://127.0.0.1:6390'
const r = new Redis(url)
const cpu = async () => { const s = await r.info('cpu'); return Number(/used_cpu_user:([\d.]+)/.exec(s)[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(s)[1]) }
const q = new Queue('mb' + Date.now(), { connection: { host: '127.0.0.1', port: 6390 } })
const N = 10000
const body = JSON.stringify({ id: 'x'.repeat(30), type: 'action.completed', created_at: new Date().toISOString(), data: { a: 'b'.repeat(300) } })
async function phase (name, fn) {
  const c0 = await cpu(); const t0 = Date.now()
  const batch = []
  for (let i = 0; i < N; i++) { batch.push(fn(i)); if (batch.length >= 200) { await Promise.all(batch); batch.length = 0 } }
  await Promise.all(batch)
  const c1 = await cpu()
  console.log(name, ((c1 - c0) * 1e6 / N).toFixed(1), 'µs redis cpu/op', Date.now() - t0, 'ms')
}
const opts = (i, delay) => ({ jobId: 'd' + i, delay, attempts: 5, backoff: { type: 'sir-webhooks' }, removeOnComplete: { age: 86400 }, removeOnFail: false })
await phase('addDelayed', (i) => q.add('action.completed', { body, receivedAt: Date.now() }, opts(i, 60000)))
const jobs = []
for (let i = 0; i < N; i++) jobs.push(new Job(q, 'x', {}, {}, 'd' + i))
await phase('promote', (i) => jobs[i].promote())
await phase('addStandard', (i) => q.add('action.completed', { body, receivedAt: Date.now() }, { ...opts(i, 0), jobId: 's' + i }))
await phase('get', (i) => r.get('nokey' + i))
await phase('evalTiny', (i) => r.eval("local now = redis.call('TIME') return { redis.call('GET', KEYS[1]), now[1], now[2] }", 1, 'k' + i))
await q.obliterate({ force: true }); await q.close(); r.quit()
