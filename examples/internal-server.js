// Shared by the examples: /health and /metrics on a port of their own.
//
// The webhook port faces the internet (SIR Giving must reach it); /health and
// /metrics are for your orchestrator and Prometheus only. /health tells anyone who
// asks how full the queue is and why the receiver is degraded; /metrics names your
// handlers and counts your traffic. Serving them on a second port, bound where only
// the cluster reaches it (INTERNAL_HOST, default 127.0.0.1; in a container, bind
// 0.0.0.0 and do not publish the port), keeps them off the public listener without
// any authentication to get wrong.
import http from 'node:http'
import { exitIfPortBusy } from './lifecycle.js'

/**
 * A MeterProvider whose reader is the Prometheus exporter, when the OpenTelemetry
 * SDK packages are installed (this repository has them as dev dependencies; in
 * your app: npm install @opentelemetry/sdk-metrics @opentelemetry/exporter-prometheus).
 * Without them the examples run, without /metrics.
 */
export async function prometheusMetrics () {
  try {
    const { MeterProvider } = await import('@opentelemetry/sdk-metrics')
    const { PrometheusExporter } = await import('@opentelemetry/exporter-prometheus')
    // preventServerStart: served by the internal server below, on the port we choose.
    const exporter = new PrometheusExporter({ preventServerStart: true })
    return { exporter, meterProvider: new MeterProvider({ readers: [exporter] }) }
  } catch {
    return undefined
  }
}

/**
 * GET /health: the receiver's health(), 200 when `ok`, 503 when `degraded` or
 * `closing` (a readiness probe then sends deliveries elsewhere; SIR Giving retries
 * what is refused). GET /metrics: Prometheus text, when `metrics` is given.
 * Resolves with the base URL once listening. It stays open while the receiver
 * closes, so the probe sees `closing`; the process exit ends it.
 */
export function serveInternal ({ webhooks, metrics, port = Number(process.env.INTERNAL_PORT ?? 9464), host = process.env.INTERNAL_HOST ?? '127.0.0.1' }) {
  const server = http.createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://internal').pathname
    if (request.method === 'GET' && path === '/health') {
      const health = webhooks.health()
      const body = JSON.stringify({ ...health, stats: webhooks.stats() })
      // paused: still taking deliveries (an operator's pause()), so still ready.
      response.writeHead(health.status === 'ok' || health.status === 'paused' ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(body)
      return
    }
    if (request.method === 'GET' && path === '/metrics' && metrics !== undefined) {
      metrics.exporter.getMetricsRequestHandler(request, response)
      return
    }
    response.writeHead(404).end()
  })
  // Not what keeps the process up: the webhook server does, and the exit ends this one.
  server.unref()
  return new Promise((resolve) => {
    server.on('error', (error) => {
      exitIfPortBusy(error, { port, host, variable: 'INTERNAL_PORT' })
      throw error
    })
    server.listen(port, host, () => {
      const { port: actualPort } = server.address()
      const base = `http://${host.includes(':') ? `[${host}]` : host}:${actualPort}`
      process.stdout.write(`health:  ${base}/health (internal port: for probes, not for the internet)\n` +
        (metrics === undefined ? '' : `metrics: ${base}/metrics (Prometheus, internal port)\n`))
      resolve(base)
    })
  })
}
