import type { IncomingMessage } from 'node:http'

export type BodyRead =
  | { readonly kind: 'complete', readonly body: Buffer }
  /** Over the limit: by its Content-Length before a byte was read, or while streaming. */
  | { readonly kind: 'too_large', readonly declaredBytes: number | undefined, readonly receivedBytes: number }
  /** The client went away (or the socket failed) before the body ended; nobody is left to answer. */
  | { readonly kind: 'aborted', readonly error: unknown }

const EMPTY = Buffer.alloc(0)

/** The Content-Length a request declares, when it declares a usable one. */
export function declaredLength (value: string | undefined): number | undefined {
  if (value === undefined || !/^[0-9]{1,15}$/.test(value)) return undefined
  return Number(value)
}

/**
 * Reads a Node request body, stopping at `limit` bytes. Over the limit it stops
 * keeping chunks at once, so an oversize or endless body costs at most `limit`
 * bytes of memory; the caller answers 413 and lets the rest drain unread.
 * Shared by the Express and node:http adapters.
 */
export function readBody (request: IncomingMessage, limit: number): Promise<BodyRead> {
  const declaredBytes = declaredLength(request.headers['content-length'])
  if (declaredBytes !== undefined && declaredBytes > limit) {
    return Promise.resolve({ kind: 'too_large', declaredBytes, receivedBytes: 0 })
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let receivedBytes = 0
    const settle = (result: BodyRead): void => {
      request.off('data', onData)
      request.off('end', onEnd)
      request.off('error', onError)
      request.off('close', onClose)
      resolve(result)
    }
    function onData (chunk: Buffer): void {
      receivedBytes += chunk.byteLength
      if (receivedBytes > limit) {
        chunks.length = 0
        settle({ kind: 'too_large', declaredBytes, receivedBytes })
        return
      }
      chunks.push(chunk)
    }
    function onEnd (): void {
      const body = chunks.length === 0 ? EMPTY : chunks.length === 1 ? chunks[0] as Buffer : Buffer.concat(chunks, receivedBytes)
      settle({ kind: 'complete', body })
    }
    function onError (error: unknown): void {
      settle({ kind: 'aborted', error })
    }
    // 'close' without 'end' first: the connection went away mid-body.
    function onClose (): void {
      settle({ kind: 'aborted', error: undefined })
    }
    request.on('data', onData)
    request.on('end', onEnd)
    request.on('error', onError)
    request.on('close', onClose)
    // A stream someone paused explicitly does not restart for a 'data' listener alone.
    request.resume()
  })
}
