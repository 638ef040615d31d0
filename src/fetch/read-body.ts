// Web APIs only (ReadableStream, Uint8Array): this file must load on edge runtimes.
import { declaredLength, overLimit, type BodyRead } from '../adapter/body-limit.js'

const EMPTY = new Uint8Array(0)

/**
 * Reads a `Request` body, stopping at `limit` bytes. It does not trust
 * Content-Length to be honest (a smaller declared length does not let a larger
 * body through) and, unlike `request.arrayBuffer()`, never holds more than
 * `limit` bytes of an oversize or endless body. A stream error rejects.
 */
export async function readWebBody (request: Request, limit: number): Promise<Exclude<BodyRead<Uint8Array>, { kind: 'aborted' }>> {
  const declaredBytes = declaredLength(request.headers.get('content-length'))
  const stream = request.body
  if (declaredBytes !== undefined && overLimit(declaredBytes, limit)) {
    // Not awaited: a sender that stalls must not hold the answer back.
    if (stream !== null) stream.cancel().catch(ignore)
    return { kind: 'too_large', declaredBytes, receivedBytes: 0 }
  }
  if (stream === null) return { kind: 'complete', body: EMPTY }

  const reader = stream.getReader()
  const chunks: Uint8Array[] = []
  let receivedBytes = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    receivedBytes += value.byteLength
    if (overLimit(receivedBytes, limit)) {
      reader.cancel().catch(ignore)
      return { kind: 'too_large', declaredBytes, receivedBytes }
    }
    chunks.push(value)
  }
  if (chunks.length === 1) return { kind: 'complete', body: chunks[0] as Uint8Array }
  const body = new Uint8Array(receivedBytes)
  let offset = 0
  for (const chunk of chunks) {
    body.set(chunk, offset)
    offset += chunk.byteLength
  }
  return { kind: 'complete', body }
}

function ignore (): void {}
