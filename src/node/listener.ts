import type { IncomingMessage, ServerResponse } from 'node:http'
import { WebhookOptionsError } from '../core/errors.js'
import { isLogger, type WebhookLogger } from '../core/logger.js'
import { pathnameOf, resolvePath } from '../core/route.js'
import { Webhooks } from '../core/webhooks.js'
import { receiveRequest } from './receive-request.js'

export interface NodeListenerOptions {
  /** The webhook route; other paths go to `next`. Default `/webhooks/sir`. */
  path?: string
  /** Logs each delivery's outcome. Default: the receiver's logger. */
  logger?: WebhookLogger
}

/** Connect-style: `next()` for requests that are not a webhook delivery, `next(error)` for a failure. */
export type NextFunction = (error?: unknown) => void

export type NodeListener = (request: IncomingMessage, response: ServerResponse, next?: NextFunction) => void

/**
 * A `node:http` request listener for one receiver. POST `path` is a delivery;
 * any other path or method goes to `next`, or gets a bare 404 when there is none,
 * so the listener can sit in front of an app or serve alone.
 */
export function nodeListener (webhooks: Webhooks, options: NodeListenerOptions = {}): NodeListener {
  if (!(webhooks instanceof Webhooks)) throw new WebhookOptionsError('nodeListener(webhooks): "webhooks" must be a Webhooks instance from sir-webhooks')
  if (options === null || typeof options !== 'object') throw new WebhookOptionsError('nodeListener(webhooks, options): "options" must be an object')
  const path = resolvePath(options.path)
  if (options.logger !== undefined && !isLogger(options.logger)) {
    throw new WebhookOptionsError('"logger" must be a pino logger (an object with child(), debug(), info(), warn() and error())')
  }
  const log = options.logger ?? webhooks.logger

  return function sirWebhooksListener (request, response, next) {
    if (request.method !== 'POST' || pathnameOf(request.url) !== path) {
      if (next !== undefined) next()
      else notFound(response)
      return
    }
    receiveRequest(webhooks, request, response, log).catch((error: unknown) => {
      if (next !== undefined) {
        next(error)
        return
      }
      log.error({ err: error }, 'the webhook listener failed to answer')
      if (!response.headersSent) {
        response.statusCode = 500
        response.end()
      } else {
        response.destroy()
      }
    })
  }
}

function notFound (response: ServerResponse): void {
  response.statusCode = 404
  response.end()
}
