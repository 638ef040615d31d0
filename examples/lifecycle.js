// Shared by the examples: a busy port explained, and, for the Express, node:http
// and fetch examples, what close-with-grace does for the Fastify one, with Node alone.
import { relative } from 'node:path'

/**
 * A port already taken is the likeliest first-run failure; a raw EADDRINUSE stack
 * does not say that PORT picks another. Exits 1 with that advice; other errors are
 * the caller's to throw.
 */
export function exitIfPortBusy (error, { port, host, variable = 'PORT' }) {
  if (error?.code !== 'EADDRINUSE') return
  const command = process.env.npm_lifecycle_event === 'start'
    ? 'npm start'
    : `node ${relative(process.cwd(), process.argv[1] ?? 'server.js')}`
  const other = variable === 'PORT' ? (port === 3000 ? 3001 : 3000) : port + 1
  process.stderr.write(`Port ${port} on ${host} is already in use (EADDRINUSE): another process is listening there.\n` +
    `Stop it, or choose a free port with ${variable}, e.g. ${variable}=${other} ${command}\n`)
  process.exit(1)
}

/**
 * On SIGINT or SIGTERM: stop taking connections, let the receiver finish the events
 * it accepted (close() answers new deliveries 503 and waits up to closeGraceMs),
 * then exit 0. A second signal, or a close that outlasts `delayMs`, exits 1 at once.
 * `delayMs` sits above the receiver's two grace periods (draining, then the
 * onDeadLetter callbacks), so the receiver's own bound ends a slow close first.
 */
export function closeOnSignal (server, webhooks, { delayMs = 25_000 } = {}) {
  let closing = false
  const onSignal = (signal) => {
    if (closing) {
      webhooks.logger.error({ signal }, 'second signal: exiting without waiting')
      process.exit(1)
    }
    closing = true
    webhooks.logger.info({ signal }, 'closing: refusing new deliveries, finishing accepted ones')
    setTimeout(() => {
      webhooks.logger.error({ delayMs }, 'close did not finish in time: exiting')
      process.exit(1)
    }, delayMs).unref()
    server.close()
    server.closeIdleConnections?.()
    webhooks.close().then(() => {
      webhooks.logger.info('closed: every accepted event finished')
      process.exit(0)
    }, (error) => {
      webhooks.logger.error({ err: error }, 'close failed')
      process.exit(1)
    })
  }
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, onSignal)
}
