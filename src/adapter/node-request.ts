import type { IncomingMessage, ServerResponse } from 'node:http'
import { tooLargeDetails } from './body-limit.js'
import { writeResult } from './node-response.js'
import type { DeliveryReceiver } from './receiver.js'
import { deliveryFromNodeHeaders, type Delivery } from '../core/delivery.js'
import type { WebhookLogger } from '../core/logger.js'
import { readBody } from './node-body.js'

// After a 413 the rest of the body is never read: closing the connection is the
// only way to stop the sender without reading (or buffering) what it still sends.
const CLOSE_CONNECTION = Object.freeze({ connection: 'close' })

/**
 * Streams a Node request's body under the receiver's limit, lets the receiver
 * decide, and writes its answer. The one request path of the node:http adapter,
 * and of the Express middleware when the body is still unread. `failed` gets
 * anything thrown on the way (the adapters' `next(error)`); nothing else does.
 */
export function receiveRequest (webhooks: DeliveryReceiver, request: IncomingMessage, response: ServerResponse, log: WebhookLogger, failed: (error: unknown) => void): void {
  const { bodyLimit } = webhooks.options
  readBody(request, bodyLimit, (read) => {
    try {
      if (read.kind === 'too_large') {
        const answer = webhooks.refuse('BODY_TOO_LARGE', log, tooLargeDetails(read, bodyLimit))
        // Whatever is already in flight is discarded, not kept, until the socket closes.
        request.resume()
        writeResult(response, answer, CLOSE_CONNECTION)
        return
      }
      if (read.kind === 'aborted') {
        log.debug({ err: read.error }, 'webhook request aborted before its body ended; nothing to answer')
        return
      }
      decideAndWrite(webhooks, deliveryFromNodeHeaders(request.headers, read.body, request.rawHeaders), log, response, failed)
    } catch (error) {
      failed(error)
    }
  })
}

/** Lets the receiver decide and writes its answer, at once when it is synchronous; a failure goes to `failed`. */
export function decideAndWrite (webhooks: DeliveryReceiver, delivery: Delivery, log: WebhookLogger, response: ServerResponse, failed: (error: unknown) => void): void {
  const answer = webhooks.decide(delivery, log)
  if (answer instanceof Promise) answer.then((decided) => { writeResult(response, decided) }).catch(failed)
  else writeResult(response, answer)
}
