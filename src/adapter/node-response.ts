import type { ServerResponse } from 'node:http'
import type { ReceiveResult } from '../core/delivery.js'

/** Each answer's headers with its `content-length`: the accepted and duplicate answers are the same objects every time. */
const withLength = new WeakMap<ReceiveResult, Readonly<Record<string, string>>>()

function headersOf (answer: ReceiveResult, extraHeaders: Readonly<Record<string, string>> | undefined): Readonly<Record<string, string>> {
  if (extraHeaders !== undefined) return { ...answer.headers, ...extraHeaders, 'content-length': String(Buffer.byteLength(answer.body)) }
  let headers = withLength.get(answer)
  if (headers === undefined) {
    headers = Object.freeze({ ...answer.headers, 'content-length': String(Buffer.byteLength(answer.body)) })
    withLength.set(answer, headers)
  }
  return headers
}

/**
 * Writes the receiver's answer as it is. A response already sent or torn down is
 * left alone. `write` then `end()`, not `end(body)`: with the length known, the
 * status line, headers and body leave in one plain socket write, where
 * `end(body)` corks the socket and flushes two chunks through `writev`: 113 →
 * 102 µs of CPU per request with ~8 KB deliveries (docs/performance.md).
 */
export function writeResult (response: ServerResponse, answer: ReceiveResult, extraHeaders?: Readonly<Record<string, string>>): void {
  if (response.headersSent || response.destroyed) return
  response.writeHead(answer.status, headersOf(answer, extraHeaders))
  response.write(answer.body)
  response.end()
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
