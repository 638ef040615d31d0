import { request as httpRequest } from 'node:http'

export interface StreamedAnswer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
  /** Bytes the client had written when the answer arrived. */
  bytesSent: number
}

export interface StreamPostOptions {
  headers?: Record<string, string>
  /** Written as fast as the server takes them, until an answer comes or `maxBytes` is reached. */
  chunkBytes?: number
  maxBytes?: number
  /** The request body is never ended, so only a server that answers mid-body can answer at all. */
  timeoutMs?: number
}

/**
 * POSTs a body that the client never finishes: it keeps writing until the server
 * answers. A server that waits for the whole body never answers and the call
 * rejects after `timeoutMs`.
 */
export function streamPostUnended (url: string, options: StreamPostOptions = {}): Promise<StreamedAnswer> {
  const chunk = Buffer.alloc(options.chunkBytes ?? 16 * 1024, 0x20)
  const maxBytes = options.maxBytes ?? 64 * 1024 * 1024
  return new Promise((resolve, reject) => {
    let bytesSent = 0
    let answered = false
    const request = httpRequest(url, { method: 'POST', headers: options.headers })
    const timer = setTimeout(() => {
      request.destroy()
      reject(new Error(`no answer within ${options.timeoutMs ?? 10_000} ms after ${bytesSent} bytes`))
    }, options.timeoutMs ?? 10_000)
    const pump = (): void => {
      while (!answered && bytesSent < maxBytes) {
        bytesSent += chunk.byteLength
        if (!request.write(chunk)) {
          request.once('drain', pump)
          return
        }
      }
    }
    request.on('response', (response) => {
      answered = true
      const sentAtAnswer = bytesSent
      const parts: Buffer[] = []
      response.on('data', (part: Buffer) => { parts.push(part) })
      response.on('end', () => {
        clearTimeout(timer)
        request.destroy()
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(parts).toString(), bytesSent: sentAtAnswer })
      })
    })
    // Once the server closes mid-body, writes fail (EPIPE, ECONNRESET); the answer is what counts.
    request.on('error', (error) => {
      if (!answered) {
        clearTimeout(timer)
        reject(error)
      }
    })
    request.flushHeaders()
    pump()
  })
}
