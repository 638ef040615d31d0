import type { IncomingMessage } from 'node:http'
import { declaredLength, overLimit, type BodyRead } from './body-limit.js'

const EMPTY = Buffer.alloc(0)

/**
 * Reads a Node request body, stopping at `limit` bytes, and calls `done` once with
 * what came of it. Over the limit it stops keeping chunks at once, so an oversize
 * or endless body costs at most `limit` bytes of memory; the caller answers 413
 * and lets the rest drain unread. Shared by the Express and node:http adapters.
 * A callback, not a promise: the promise, its resolver and the awaiting caller
 * were about 8 objects and two microtask hops per request (docs/performance.md).
 */
export function readBody (request: IncomingMessage, limit: number, done: (read: BodyRead<Buffer>) => void): void {
  const declaredBytes = declaredLength(request.headers['content-length'])
  if (declaredBytes !== undefined && overLimit(declaredBytes, limit)) {
    done({ kind: 'too_large', declaredBytes, receivedBytes: 0 })
    return
  }
  const chunks: Buffer[] = []
  let receivedBytes = 0
  const settle = (result: BodyRead<Buffer>): void => {
    request.off('data', onData)
    request.off('end', onEnd)
    request.off('error', onError)
    request.off('close', onClose)
    done(result)
  }
  function onData (chunk: Buffer): void {
    receivedBytes += chunk.byteLength
    if (overLimit(receivedBytes, limit)) {
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
}
