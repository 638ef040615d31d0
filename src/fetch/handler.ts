// Web APIs only (Request, Response, ReadableStream): no `node:` import here, so
// the adapter itself loads on edge runtimes. The receiver it is given brings its
// own needs; see docs/fetch.md.
import { tooLargeDetails } from '../adapter/body-limit.js'
import { assertReceiver, checkAdapterOptions, type DeliveryReceiver } from '../adapter/receiver.js'
import { resolvePath } from '../adapter/route.js'
import { deliveryFromWebHeaders, type ReceiveResult } from '../core/delivery.js'
import { readWebBody } from './read-body.js'
import { waitUntilPicker, type WaitUntil } from './wait-until.js'

export type { WaitUntil, WaitUntilContext } from './wait-until.js'

export interface FetchHandlerOptions {
  /**
   * Answer only requests to this path, 404 for others. Default: every path,
   * for a route handler that its framework already mounted (Next.js, Hono).
   */
  path?: string
  /**
   * Keeps the platform alive until each accepted delivery's handlers have
   * finished, where it would otherwise stop with the response: `waitUntil` from
   * @vercel/functions, `after` from next/server. Not needed on Workers: their
   * `ctx` (third argument) is used by itself.
   */
  waitUntil?: WaitUntil
}

export const BODY_USED_MESSAGE =
  'sir-webhooks: the request body was already read (request.json(), request.text(), c.req.json() …) before the webhook handler, ' +
  'so the exact bytes the signature covers are gone. Pass the handler the untouched Request (in Hono, c.req.raw before any body reader), ' +
  'or give it request.clone() taken before your code reads the body'

/**
 * `ctx`, when it has a `waitUntil` (a Worker's ExecutionContext, Hono's
 * `c.executionCtx`), is handed each accepted delivery's handlers. `env` is
 * whatever the platform passes second (Workers' bindings, Next's `{ params }`).
 */
export type FetchHandler = (request: Request, env?: unknown, ctx?: unknown) => Promise<Response>

/**
 * A `(request, env?, ctx?) => Promise<Response>` handler for one receiver: a
 * Next.js route handler, `Bun.serve({ fetch })`, `Deno.serve`, a Worker's
 * `fetch`, or a Hono route via `c.req.raw`. Only POST is a delivery; anything
 * else gets 404.
 */
export function fetchHandler (webhooks: DeliveryReceiver, options?: FetchHandlerOptions): FetchHandler {
  assertReceiver(webhooks, 'fetchHandler(webhooks)')
  const checked = checkAdapterOptions(options, ['path', 'waitUntil'], 'fetchHandler(webhooks, options)')
  const path = checked.path === undefined ? undefined : resolvePath(checked.path)
  // The receiver's logger: checking another one here would import pino into
  // this module, which edge runtimes may not load.
  const log = webhooks.logger
  const { bodyLimit } = webhooks.options
  const pickWaitUntil = waitUntilPicker(checked.waitUntil, log)

  return async function sirWebhooksFetch (request: Request, env?: unknown, ctx?: unknown): Promise<Response> {
    // A full URL here, never the absolute request-target form: only the path counts,
    // as sent (a URL keeps percent-encoding), and a target with a fragment is none.
    if (request.method !== 'POST' || (path !== undefined && !isPath(request.url, path))) {
      request.body?.cancel().catch(ignore)
      return new Response(null, { status: 404 })
    }
    if (request.bodyUsed) return toResponse(webhooks.refuse('RAW_BODY_UNAVAILABLE', log, {}, BODY_USED_MESSAGE))
    const read = await readWebBody(request, bodyLimit)
    if (read.kind === 'too_large') return toResponse(webhooks.refuse('BODY_TOO_LARGE', log, tooLargeDetails(read, bodyLimit)))
    const delivery = deliveryFromWebHeaders(request.headers, read.body)
    delivery.waitUntil = pickWaitUntil(env, ctx)
    const answer = webhooks.decide(delivery, log)
    return toResponse(answer instanceof Promise ? await answer : answer)
  }
}

function isPath (url: string, path: string): boolean {
  const parsed = new URL(url)
  return parsed.pathname === path && parsed.hash === '' && !url.endsWith('#')
}

function toResponse (answer: ReceiveResult): Response {
  return new Response(answer.body, { status: answer.status, headers: answer.headers })
}

function ignore (): void {}
