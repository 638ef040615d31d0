import type { IncomingMessage, ServerResponse } from 'node:http'
import type { WebhookLogger } from '../core/logger.js'
import { deliveryFromNodeHeaders, type ReceiveResult } from '../core/receive.js'
import type { Webhooks } from '../core/webhooks.js'
import { readBody } from './read-body.js'

// After a 413 the rest of the body is never read: closing the connection is the
// only way to stop the sender without reading (or buffering) what it still sends.
const CLOSE_CONNECTION = Object.freeze({ connection: 'close' })

/** Writes the receiver's answer as it is. A response already sent or torn down is left alone. */
export function writeResult (response: ServerResponse, answer: ReceiveResult, extraHeaders?: Readonly<Record<string, string>>): void {
  if (response.headersSent || response.destroyed) return
  response.writeHead(answer.status, extraHeaders === undefined ? answer.headers : { ...answer.headers, ...extraHeaders })
  response.end(answer.body)
}

/** Answers an over-limit body without reading the rest of it. */
function refuseTooLarge (webhooks: Webhooks, request: IncomingMessage, response: ServerResponse, log: WebhookLogger, details: Record<string, unknown>): void {
  log.info({ reason: 'BODY_TOO_LARGE', bodyLimit: webhooks.options.bodyLimit, ...details }, 'webhook rejected')
  // Whatever is already in flight is discarded, not kept, until the socket closes.
  request.resume()
  writeResult(response, webhooks.refusal('BODY_TOO_LARGE'), CLOSE_CONNECTION)
}

/**
 * Streams a Node request's body under the receiver's limit, lets the receiver
 * decide, and writes its answer. The one request path of the node:http adapter,
 * and of the Express middleware when the body is still unread.
 */
export async function receiveRequest (webhooks: Webhooks, request: IncomingMessage, response: ServerResponse, log: WebhookLogger): Promise<void> {
  const read = await readBody(request, webhooks.options.bodyLimit)
  if (read.kind === 'too_large') {
    refuseTooLarge(webhooks, request, response, log, { declaredLength: read.declaredBytes, receivedBytes: read.receivedBytes })
    return
  }
  if (read.kind === 'aborted') {
    log.debug({ err: read.error }, 'webhook request aborted before its body ended; nothing to answer')
    return
  }
  const answer = webhooks.decide(deliveryFromNodeHeaders(request.headers, read.body), log)
  writeResult(response, answer instanceof Promise ? await answer : answer)
}
