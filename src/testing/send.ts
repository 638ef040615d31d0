import { createDelivery, type CreateDeliveryOptions } from './delivery.js'

export interface SendDeliveryOptions extends CreateDeliveryOptions {
  /** Abort the request after this many milliseconds. Default 10 000. */
  timeoutMs?: number
  /** Extra or replacing headers. */
  headers?: Record<string, string>
}

export interface SendDeliveryResult {
  status: number
  headers: Record<string, string>
  /** The response body as text. */
  body: string
  /** From sending the request to the end of the response body. */
  latencyMs: number
}

/** Signs an event and POSTs it to any URL with `fetch`, as the platform would. */
export async function sendDelivery (url: string | URL, event: object | string, options: SendDeliveryOptions): Promise<SendDeliveryResult> {
  const { body, headers } = createDelivery(event, options)
  const started = performance.now()
  const response = await fetch(url, {
    method: 'POST',
    headers: { ...headers, ...options.headers },
    body,
    signal: AbortSignal.timeout(options.timeoutMs ?? 10_000)
  })
  const text = await response.text()
  return {
    status: response.status,
    headers: Object.fromEntries(response.headers),
    body: text,
    latencyMs: performance.now() - started
  }
}
