// Web APIs only, like the rest of the fetch adapter.
import { WebhookOptionsError } from '../core/errors.js'
import type { WebhookLogger } from '../core/logger.js'

/** A platform's way to keep work alive after the response: `waitUntil` from @vercel/functions, `after` from next/server. */
export type WaitUntil = (promise: Promise<unknown>) => void

/** What a Worker's `fetch(request, env, ctx)` gets as `ctx` (Hono: `c.executionCtx`): only `waitUntil` is used. */
export interface WaitUntilContext {
  waitUntil (promise: Promise<unknown>): void
}

export const NO_WAIT_UNTIL_MESSAGE =
  'sir-webhooks: this runtime may stop a request\'s work once its response is sent, and the delivery came with no waitUntil, ' +
  'so handlers may never run although the sender got its 2xx. Pass the platform\'s context: in a Worker, handle(request, env, ctx) ' +
  '(in Hono, handle(c.req.raw, c.env, c.executionCtx)), or fetchHandler(webhooks, { waitUntil }); or keep events in a durable inbox ' +
  'drained by a long-lived worker. See docs/fetch.md. (Logged once.)'

/**
 * Returns, per request, the function that keeps that delivery's handlers alive:
 * the `waitUntil` option where given, else the `waitUntil` of the request's
 * context (a Worker's third argument; the second, where a platform passes
 * `(request, context)`). Next.js's `(request, { params })` has none, and gets
 * none. Where the runtime is known to stop work with the response and there is
 * none, says so in the log, once.
 */
export function waitUntilPicker (configured: unknown, log: WebhookLogger): (env: unknown, ctx: unknown) => WaitUntil | undefined {
  if (configured !== undefined && typeof configured !== 'function') {
    throw new WebhookOptionsError('fetchHandler(webhooks, options): "waitUntil" must be a function such as waitUntil from @vercel/functions or after from next/server')
  }
  // A waitUntil that throws (Next's after() outside a request, say) must not turn
  // an accepted event into a 503: the handlers run anyway, only not kept alive.
  const guarded = (call: WaitUntil): WaitUntil => (promise) => {
    try {
      call(promise)
    } catch (error) {
      log.error({ err: error }, 'sir-webhooks: waitUntil threw; the handlers run, but the platform may not wait for them')
    }
  }
  const fromOptions = configured === undefined ? undefined : guarded(configured as WaitUntil)
  let warned = false
  // The runtime does not change between requests: asked once, at the first that needs it.
  let endsWork: boolean | undefined
  return (env, ctx) => {
    if (fromOptions !== undefined) return fromOptions
    const holder = hasWaitUntil(ctx) ? ctx : hasWaitUntil(env) ? env : undefined
    // A method call: workerd's ExecutionContext checks `this`.
    if (holder !== undefined) return guarded((promise) => { holder.waitUntil(promise) })
    endsWork ??= endsWorkWithResponse()
    if (!warned && endsWork) {
      warned = true
      log.warn({ reason: 'NO_WAIT_UNTIL' }, NO_WAIT_UNTIL_MESSAGE)
    }
    return undefined
  }
}

function hasWaitUntil (value: unknown): value is WaitUntilContext {
  return value !== null && typeof value === 'object' && typeof (value as Partial<WaitUntilContext>).waitUntil === 'function'
}

/** Cloudflare Workers and Vercel's Edge runtime end a request's work with its response unless told to wait. */
function endsWorkWithResponse (): boolean {
  const scope = globalThis as { navigator?: { userAgent?: unknown }, EdgeRuntime?: unknown }
  return scope.navigator?.userAgent === 'Cloudflare-Workers' || typeof scope.EdgeRuntime === 'string'
}
