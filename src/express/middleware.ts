import type { IncomingMessage, ServerResponse } from 'node:http'
import { writeResult } from '../adapter/node-response.js'
import { assertReceiver, checkAdapterOptions, type DeliveryReceiver } from '../adapter/receiver.js'
import { pathnameOf, resolvePath, routePathOf } from '../adapter/route.js'
import { deliveryFromNodeHeaders } from '../core/delivery.js'
import { isLogger, type WebhookLogger } from '../core/logger.js'
import { decideAndWrite, receiveRequest } from '../adapter/node-request.js'

/** Where `captureRawBody` keeps the bytes: a registered symbol, so two copies of the package agree. */
const RAW_BODY = Symbol.for('sir-webhooks.rawBody')

export interface ExpressMiddlewareOptions {
  /**
   * The webhook path, checked exactly against the request's full path. Default:
   * the path of the route the middleware is mounted on (`app.post(path, …)`).
   */
  path?: string
  /** Logs each delivery's outcome. Default: `req.log` when pino-http set one, else the receiver's logger. */
  logger?: WebhookLogger
}

export type ExpressNextFunction = (error?: unknown) => void

/**
 * Typed on Node's own request and response so it fits Express 4 and 5 (and
 * Connect) without making `@types/express` a requirement.
 */
export type ExpressMiddleware = (request: IncomingMessage, response: ServerResponse, next: ExpressNextFunction) => void

/**
 * The `verify` hook for `express.json()` (or `express.raw()`), for apps whose
 * JSON parser runs before the webhook route. It keeps the exact bytes the parser
 * read, which are what the signature covers:
 *
 * ```js
 * app.use(express.json({ verify: captureRawBody, limit: '1mb' }))
 * ```
 */
export function captureRawBody (request: IncomingMessage, _response: ServerResponse, body: Buffer): void {
  (request as unknown as Record<symbol, unknown>)[RAW_BODY] = body
}

export const RAW_BODY_UNAVAILABLE_MESSAGE =
  'sir-webhooks: the request body was read by another body parser (such as express.json()) before the webhook middleware, ' +
  'so the exact bytes the signature covers are gone. Fix it one of two ways: ' +
  '(1) declare the webhook route before the parser: app.post(\'/webhooks/sir\', expressMiddleware(webhooks)) above app.use(express.json()); or ' +
  '(2) let the parser keep the bytes: app.use(express.json({ verify: captureRawBody, limit: \'1mb\' })), with captureRawBody imported from \'sir-webhooks/express\' and a limit of at least the receiver\'s bodyLimit'

/**
 * Express middleware for one receiver: mount it on the webhook route with
 * `app.post(path, expressMiddleware(webhooks))`. It reads the body itself when
 * it is still unread, or takes the exact bytes a parser kept (`captureRawBody`,
 * `express.raw()`); it never re-serializes a parsed body, which would not verify.
 */
export function expressMiddleware (webhooks: DeliveryReceiver, options?: ExpressMiddlewareOptions): ExpressMiddleware {
  assertReceiver(webhooks, 'expressMiddleware(webhooks)')
  const checked = checkAdapterOptions(options, ['path', 'logger'], 'expressMiddleware(webhooks, options)')
  const fixedPath = checked.path === undefined ? undefined : resolvePath(checked.path)
  const fixedLogger = checked.logger

  return function sirWebhooksMiddleware (request, response, next) {
    // Other methods, and paths Express matched loosely (letter case, a trailing
    // slash), belong to whatever comes next: every adapter routes by one rule.
    if (request.method !== 'POST' || !exactRoute(request, fixedPath)) {
      next()
      return
    }
    const log = fixedLogger ?? requestLogger(request) ?? webhooks.logger
    const kept = keptBytes(request)
    if (kept !== undefined) {
      decideAndWrite(webhooks, deliveryFromNodeHeaders(request.headers, kept, request.rawHeaders), log, response, next)
      return
    }
    if (bodyConsumed(request)) {
      // Answered at once: waiting for a body that will never come would hang the
      // sender, and JSON.stringify(req.body) is not the bytes that were signed.
      writeResult(response, webhooks.refuse('RAW_BODY_UNAVAILABLE', log, { path: pathnameOf(request.url) }, RAW_BODY_UNAVAILABLE_MESSAGE))
      return
    }
    receiveRequest(webhooks, request, response, log, next)
  }
}

/**
 * Express matches routes without regard to letter case or a trailing slash
 * unless the app opts in; the other adapters match exactly. With `path` given,
 * the full path must equal it. Without, a route declared with a literal path
 * (`app.post('/webhooks/sir', …)`, the documented mount) must match it exactly;
 * patterns, arrays, regular expressions and `app.use` mounts are Express's to
 * route, as before.
 */
function exactRoute (request: IncomingMessage, fixedPath: string | undefined): boolean {
  const fields = request as unknown as { originalUrl?: string, baseUrl?: string, route?: { path?: unknown } }
  const actual = routePathOf(fields.originalUrl ?? request.url)
  if (actual === undefined) return false
  if (fixedPath !== undefined) return actual === fixedPath
  const routePath = fields.route?.path
  if (typeof routePath !== 'string' || !LITERAL_PATH.test(routePath)) return true
  const declared = (fields.baseUrl ?? '') + (routePath === '/' ? '' : routePath)
  return actual === (declared === '' ? '/' : declared)
}

// No parameters (`:tenant`), wildcards or groups: a path Express compares as text.
const LITERAL_PATH = /^\/[A-Za-z0-9._~\-/%]*$/

/** The exact body bytes a parser kept, if one did. A decoded string is not accepted: it may differ from the wire. */
function keptBytes (request: IncomingMessage): Uint8Array | undefined {
  const fields = request as unknown as Record<PropertyKey, unknown>
  const captured = fields[RAW_BODY]
  if (captured instanceof Uint8Array) return captured
  // The common hand-written hook, `verify: (req, res, buf) => { req.rawBody = buf }`.
  if (fields.rawBody instanceof Uint8Array) return fields.rawBody
  // express.raw(), as in SIR Giving's reference receiver.
  if (fields.body instanceof Uint8Array && bodyConsumed(request)) return fields.body
  return undefined
}

/** Another reader got to the stream first (body-parser 1 sets `_body`; 2 leaves the stream ended). */
function bodyConsumed (request: IncomingMessage): boolean {
  const fields = request as unknown as Record<string, unknown>
  return fields._body === true || request.readableDidRead || request.readableEnded || (request.complete && !request.readable)
}

function requestLogger (request: IncomingMessage): WebhookLogger | undefined {
  const log = (request as unknown as { log?: unknown }).log
  return isLogger(log) ? log : undefined
}
