import type { IncomingMessage, ServerResponse } from 'node:http'
import { Dashboard, type DashboardResponse } from './app.js'
import { checkOptions, type DashboardOptions } from './options.js'
import { dashboardHeaders, formFrom, pathBelow } from './request-headers.js'

export type NodeDashboardOptions = DashboardOptions<IncomingMessage>

export interface DashboardListener {
  /** node:http's `(request, response)`, or Express middleware with `next` for what is not the dashboard's. */
  (request: IncomingMessage, response: ServerResponse, next?: (error?: unknown) => void): void
  /** Stops the overview's sampling timer. */
  close (): void
}

const FORM_LIMIT = 16_384

async function readForm (request: IncomingMessage): Promise<string | undefined> {
  let size = 0
  const chunks: Buffer[] = []
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > FORM_LIMIT) return undefined
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function write (response: ServerResponse, answer: DashboardResponse, head: boolean): void {
  response.writeHead(answer.status, answer.headers)
  response.end(head ? undefined : answer.body)
}

/**
 * The dashboard for node:http and Express: `http.createServer(dashboardHandler(options))`
 * or `app.use(dashboardHandler(options))`. `prefix` is the full path it answers under;
 * with Express, the mount path is read from `originalUrl`.
 */
export function dashboardHandler (options: NodeDashboardOptions): DashboardListener {
  const checked = checkOptions<IncomingMessage>(options)
  const prefix = options.prefix ?? ''
  const core = new Dashboard(checked, prefix)
  const listener = (request: IncomingMessage, response: ServerResponse, next?: (error?: unknown) => void): void => {
    const target = (request as { originalUrl?: string }).originalUrl ?? request.url ?? '/'
    const below = pathBelow(target, prefix)
    if (below === undefined) {
      if (next !== undefined) next()
      else write(response, { status: 404, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'not found\n' }, false)
      return
    }
    const handle = async (): Promise<void> => {
      // Express's body parsers may have read the body already.
      const parsed = (request as { body?: unknown }).body
      const unread = request.method === 'POST' && parsed === undefined && !request.readableEnded
      const body = unread ? await readForm(request) : parsed
      if (unread && body === undefined) {
        write(response, { status: 413, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'a dashboard form is at most 16 KiB\n' }, false)
        return
      }
      const form = formFrom(request.headers['content-type'], body)
      const answer = await core.handle({
        method: request.method ?? 'GET',
        path: below.path,
        query: below.query,
        headers: dashboardHeaders(request.headers),
        ...(form === undefined ? {} : { form }),
        raw: request
      })
      write(response, answer, request.method === 'HEAD')
    }
    handle().catch((error: unknown) => {
      if (next !== undefined) { next(error); return }
      if (!response.headersSent) write(response, { status: 500, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'the dashboard failed; see the server log\n' }, false)
      else response.destroy()
    })
  }
  return Object.assign(listener, { close: () => { core.close() } })
}
