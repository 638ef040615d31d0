import type { IncomingMessage, ServerResponse } from 'node:http'
import { assertReceiver, checkAdapterOptions, type DeliveryReceiver } from '../adapter/receiver.js'
import { isDeliveryRoute, resolvePath } from '../adapter/route.js'
import type { WebhookLogger } from '../core/logger.js'
import { receiveRequest } from '../adapter/node-request.js'

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
export function nodeListener (webhooks: DeliveryReceiver, options?: NodeListenerOptions): NodeListener {
  assertReceiver(webhooks, 'nodeListener(webhooks)')
  const checked = checkAdapterOptions(options, ['path', 'logger'], 'nodeListener(webhooks, options)')
  const path = resolvePath(checked.path)
  const log = checked.logger ?? webhooks.logger

  return function sirWebhooksListener (request, response, next) {
    if (!isDeliveryRoute(request.method, request.url, path)) {
      if (next !== undefined) next()
      else answerBare(response, 404)
      return
    }
    receiveRequest(webhooks, request, response, log, next ?? ((error: unknown) => {
      log.error({ err: error }, 'the webhook listener failed to answer')
      if (!response.headersSent) answerBare(response, 500)
      else response.destroy()
    }))
  }
}

function answerBare (response: ServerResponse, status: number): void {
  response.statusCode = status
  response.end()
}
