// Deliveries at an even pace, as a sender's steady traffic arrives: delivery i is
// due at start + i * 1000 / rate ms and goes out on a free keep-alive connection.
// Its latency counts from when it was due, not from when it was written, so a
// delivery held back by a slow receiver (no connection free, or this process's
// loop late) counts that wait too: no coordinated omission to correct.
//
// autocannon's `overallRate` is not this: each connection sends its share of a
// second back to back as the second starts, then idles, so "1 000/s" arrives as
// bursts of 1 000 within the first few hundred ms of each second.
import http from 'node:http'
import { DeliverySource, PATH } from './deliveries.js'

/**
 * Offers `rate` deliveries a second for `seconds` to each port (the rate is split
 * among them) over at most `connections` connections; resolves with the latencies
 * of the 2xx answers (ms, from when each was due) and the count of the rest.
 */
export async function pacedLoad ({ ports, rate, seconds, connections }) {
  const source = new DeliverySource('sir', 'small')
  source.selfCheck()
  source.refresh()
  const agents = ports.map(() => new http.Agent({ keepAlive: true, maxSockets: Math.max(1, Math.floor(connections / ports.length)) }))
  const interval = 1000 / rate
  const total = Math.round(rate * seconds)
  const times = []
  let non2xx = 0
  let errors = 0
  let sent = 0
  const startedAt = performance.now()
  const inFlight = new Set()
  const late = []
  const send = (index, dueAt) => {
    late.push(performance.now() - dueAt)
    const { body, headers } = source.next()
    const which = index % ports.length
    const done = new Promise((resolve) => {
      const request = http.request({ host: '127.0.0.1', port: ports[which], path: PATH, method: 'POST', agent: agents[which], headers: { ...headers, 'content-length': body.length } }, (response) => {
        response.resume()
        response.on('end', () => {
          if (response.statusCode >= 200 && response.statusCode < 300) times.push(performance.now() - dueAt)
          else non2xx++
          resolve()
        })
      })
      request.on('error', () => { errors++; resolve() })
      request.end(body)
    })
    inFlight.add(done)
    void done.then(() => inFlight.delete(done))
  }
  await new Promise((resolve) => {
    const tick = () => {
      const now = performance.now()
      // Everything due by now goes out (several at once after a late tick, each timed from its own due time).
      while (sent < total && startedAt + sent * interval <= now) {
        send(sent, startedAt + sent * interval)
        sent++
      }
      if (sent >= total) resolve()
      else setTimeout(tick, Math.max(0, Math.min(1, startedAt + sent * interval - performance.now())))
    }
    tick()
  })
  await Promise.all([...inFlight])
  for (const agent of agents) agent.destroy()
  late.sort((a, b) => a - b)
  return { times, non2xx, errors, duration: (performance.now() - startedAt) / 1000, sendLateP99: late[Math.floor(late.length * 0.99)] }
}
