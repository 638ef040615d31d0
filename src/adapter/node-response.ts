import type { ServerResponse } from 'node:http'
import type { ReceiveResult } from '../core/delivery.js'

/** Writes the receiver's answer as it is. A response already sent or torn down is left alone. */
export function writeResult (response: ServerResponse, answer: ReceiveResult, extraHeaders?: Readonly<Record<string, string>>): void {
  if (response.headersSent || response.destroyed) return
  response.writeHead(answer.status, extraHeaders === undefined ? answer.headers : { ...answer.headers, ...extraHeaders })
  response.end(answer.body)
}

/**
 * Calls back once a Node response has been handed to the socket ('finish'), or
 * torn down ('close'), whichever comes first. The receiver starts handlers from
 * it, so a framework hook that delays the write (an async onSend, compression)
 * cannot let handler code run before the 2xx is written.
 */
export function afterResponse (response: ServerResponse): (callback: () => void) => void {
  return (callback) => {
    if (response.writableFinished || response.destroyed) {
      callback()
      return
    }
    onceAny(response, ['finish', 'close'], callback)
  }
}

/** Calls back once, on whichever of the events comes first, and stops listening to the others. */
export function onceAny (emitter: NodeJS.EventEmitter, events: readonly string[], callback: () => void): void {
  const once = (): void => {
    for (const event of events) emitter.off(event, once)
    callback()
  }
  for (const event of events) emitter.once(event, once)
}
