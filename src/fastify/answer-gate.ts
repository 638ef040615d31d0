import type { ServerResponse } from 'node:http'
import { afterResponse } from '../adapter/node-response.js'

/**
 * Tells the queue when Fastify has written a delivery's answer, so handlers start
 * after the 2xx (behind an app's async onSend hook, say) without the queue holding
 * the response. Measured with ~8 KB bodies, keeping the response (and the request
 * it leads to) alive until the handlers' turn cost about 8 µs of garbage
 * collection per delivery, so the gate lets go of it as soon as the answer is out.
 * Usually that is when `reply.send()` returns: without an async onSend hook Fastify
 * ends the response synchronously. This replaced an `onResponse` hook on the route,
 * which cost Fastify a 'finish' listener, a hook run and about 9 objects per request.
 */
export class AnswerGate {
  #response: ServerResponse | undefined

  constructor (response: ServerResponse) {
    this.#response = response
  }

  /** Right after `reply.send()`: if Fastify ended the response already, the answer is out. */
  sent (): void {
    if (this.#response?.writableEnded === true) this.#response = undefined
  }

  /** The `Delivery.whenAnswered` for this request. */
  readonly whenAnswered = (callback: () => void): void => {
    const response = this.#response
    if (response === undefined) {
      callback()
      return
    }
    // Not ended when send() returned: a hook held it. It may be written by now, or
    // still held, or the connection closed first; the response itself says which.
    afterResponse(response)(callback)
  }
}
