import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { dashboardHandler } from '../dashboard/node.js'
import { sameSecret } from '../dashboard/guard.js'
import { EXIT_OK, numberFlag, type Command, type Flags, type Io } from './args.js'
import { openStore, STORE_FORMS } from './inbox-stores.js'

const usage = `Usage: sir-webhooks dashboard --store STORE [--port N] [--read-only]

Serves the operator dashboard (overview, events, dead letters, re-drive, purge)
on a durable inbox, without the app, bound to 127.0.0.1. Prints a one-time
sign-in URL: opening it sets a session cookie for this run; the URL then no
longer works. Stop with Ctrl-C.

  --store STORE   ${STORE_FORMS}
                  (or set SIR_WEBHOOKS_STORE, which keeps a password out of shell history)
  --port N        the local port (default: one the system picks)
  --read-only     no re-drive, no purge
  --queue NAME    the BullMQ queue (default sir-webhooks)
  --prefix P      BullMQ's key prefix (default bull)
  --schema NAME   the Postgres inbox's schema (default sir_webhooks)`

function cookieValue (request: IncomingMessage, cookie: string): string {
  const header = request.headers.cookie ?? ''
  for (const part of header.split(';')) {
    const [name, ...value] = part.trim().split('=')
    if (name === cookie) return value.join('=')
  }
  return ''
}

/**
 * A session for one person at one machine: the sign-in token is spent on first
 * use and swapped for a cookie (HttpOnly, SameSite=Strict), so the URL left in a
 * terminal's scroll-back or a browser's history opens nothing.
 */
class LocalSession {
  #signIn: string | undefined = randomBytes(24).toString('base64url')
  readonly #session = randomBytes(32).toString('base64url')
  /**
   * The run's own path: a browser sends a cookie to every port of a host, so the
   * cookie is scoped to this random path (other local servers never get it) and
   * named after the port (a second run does not overwrite the first's).
   */
  readonly base = `/${randomBytes(12).toString('base64url')}`
  #cookie = 'sir_dashboard_session'

  listeningOn (port: number): void { this.#cookie = `sir_dashboard_${port}` }

  get signInToken (): string | undefined { return this.#signIn }

  /** Answers a sign-in request; true when it was one. */
  signIn (request: IncomingMessage, response: ServerResponse): boolean {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1')
    const token = url.searchParams.get('sign-in')
    if (url.pathname !== `${this.base}/` || token === null) return false
    if (this.#signIn === undefined || !sameSecret(token, this.#signIn)) {
      response.writeHead(403, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' })
      response.end('this sign-in link was used already or is wrong: restart "sir-webhooks dashboard" for a new one\n')
      return true
    }
    this.#signIn = undefined
    response.writeHead(303, {
      location: `${this.base}/`,
      'set-cookie': `${this.#cookie}=${this.#session}; HttpOnly; SameSite=Strict; Path=${this.base}`,
      'cache-control': 'no-store',
      'referrer-policy': 'no-referrer'
    })
    response.end()
    return true
  }

  authorized (request: IncomingMessage): boolean {
    return sameSecret(cookieValue(request, this.#cookie), this.#session)
  }
}

async function run (flags: Flags, io: Io): Promise<number> {
  const port = numberFlag(flags, 'port', { min: 0, max: 65_535, integer: true }) ?? 0
  const inbox = await openStore(flags, io)
  const session = new LocalSession()
  const dashboard = dashboardHandler({
    webhooks: { inbox },
    authorize: (request) => session.authorized(request),
    readOnly: flags['read-only'] === true,
    prefix: session.base,
    title: 'sir-webhooks (local)'
  })
  const server = createServer((request, response) => {
    if (!session.signIn(request, response)) dashboard(request, response)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    // Loopback only: the dashboard re-drives and purges, and the store's credentials are in this process.
    server.listen(port, '127.0.0.1', resolve)
  })
  const { port: bound } = server.address() as AddressInfo
  session.listeningOn(bound)
  io.stdout.write(`sir-webhooks dashboard on http://127.0.0.1:${bound}${session.base}/\n` +
    `Open this one-time link to sign in (it works once):\n  http://127.0.0.1:${bound}${session.base}/?sign-in=${session.signInToken ?? ''}\n`)
  await new Promise<void>((resolve) => {
    const stop = (): void => { resolve() }
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  })
  dashboard.close()
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
  await inbox.close(0)
  return EXIT_OK
}

export const dashboardCommand: Command = {
  name: 'dashboard',
  summary: 'serve the operator dashboard on a durable inbox, on 127.0.0.1, with a one-time sign-in link',
  usage,
  options: {
    store: { type: 'string' },
    port: { type: 'string' },
    'read-only': { type: 'boolean' },
    queue: { type: 'string' },
    prefix: { type: 'string' },
    schema: { type: 'string' }
  },
  run
}
