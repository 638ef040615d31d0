// Web APIs only (Request, Response, ReadableStream): no `node:` import here, so
// the adapter itself loads on edge runtimes. The receiver it is given brings its
// own needs; see docs/fetch.md.
import { tooLargeDetails } from '../adapter/body-limit.js'
import { assertReceiver, checkAdapterOptions, type DeliveryReceiver } from '../adapter/receiver.js'
import { resolvePath } from '../adapter/route.js'
import { deliveryFromWebHeaders, type ReceiveResult } from '../core/delivery.js'
import { readWebBody } from './read-body.js'

export interface FetchHandlerOptions {
  /**
   * Answer only requests to this path, 404 for others. Default: every path,
   * for a route handler that its framework already mounted (Next.js, Hono).
   */
  path?: string
}

export const BODY_USED_MESSAGE =
  'sir-webhooks: the request body was already read (request.json(), request.text(), c.req.json() …) before the webhook handler, ' +
  'so the exact bytes the signature covers are gone. Pass the handler the untouched Request (in Hono, c.req.raw before any body reader), ' +
  'or give it request.clone() taken before your code reads the body'

export type FetchHandler = (request: Request) => Promise<Response>

/**
 * A `(request) => Promise<Response>` handler for one receiver: a Next.js route
 * handler, `Bun.serve({ fetch })`, `Deno.serve`, a Worker's `fetch`, or a Hono
 * route via `c.req.raw`. Only POST is a delivery; anything else gets 404.
 */
export function fetchHandler (webhooks: DeliveryReceiver, options?: FetchHandlerOptions): FetchHandler {
  assertReceiver(webhooks, 'fetchHandler(webhooks)')
  const checked = checkAdapterOptions(options, ['path'], 'fetchHandler(webhooks, options)')
  const path = checked.path === undefined ? undefined : resolvePath(checked.path)
  // The receiver's logger: checking another one here would import pino into
  // this module, which edge runtimes may not load.
  const log = webhooks.logger
  const { bodyLimit } = webhooks.options

  return async function sirWebhooksFetch (request: Request): Promise<Response> {
    // A full URL here, never the absolute request-target form: only the path counts.
    if (request.method !== 'POST' || (path !== undefined && new URL(request.url).pathname !== path)) {
      request.body?.cancel().catch(ignore)
      return new Response(null, { status: 404 })
    }
    if (request.bodyUsed) return toResponse(webhooks.refuse('RAW_BODY_UNAVAILABLE', log, {}, BODY_USED_MESSAGE))
    const read = await readWebBody(request, bodyLimit)
    if (read.kind === 'too_large') return toResponse(webhooks.refuse('BODY_TOO_LARGE', log, tooLargeDetails(read, bodyLimit)))
    const answer = webhooks.decide(deliveryFromWebHeaders(request.headers, read.body), log)
    return toResponse(answer instanceof Promise ? await answer : answer)
  }
}

function toResponse (answer: ReceiveResult): Response {
  return new Response(answer.body, { status: answer.status, headers: answer.headers })
}

function ignore (): void {}
