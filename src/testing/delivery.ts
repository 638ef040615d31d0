import { sign } from '../core/verify-node.js'

export const SIR_USER_AGENT = 'SIRGiving-Webhooks/1.0'

/** The headers of one delivery, named as the platform's documentation names them. */
export type DeliveryHeaders = {
  'Content-Type': 'application/json'
  'User-Agent': string
  'X-SIR-Signature': string
  'X-SIR-Timestamp': string
}

export interface CreateDeliveryOptions {
  secret: string
  /** Unix seconds, or a Date. Default: now. Set it to test the timestamp window. */
  timestamp?: number | Date
}

export interface SignedDelivery {
  /** The exact bytes to send, as a string: compact JSON, as the platform writes it. */
  body: string
  headers: DeliveryHeaders
}

/**
 * A delivery exactly as SIR Giving sends it. An event object is serialized
 * compactly; a string is sent as it is, so tests can sign malformed bodies too.
 */
export function createDelivery (event: object | string, options: CreateDeliveryOptions): SignedDelivery {
  if (options === null || typeof options !== 'object' || typeof options.secret !== 'string' || options.secret.length === 0) {
    throw new TypeError('sir-webhooks: createDelivery(event, options): "secret" must be a non-empty string')
  }
  const body = typeof event === 'string' ? event : JSON.stringify(event)
  const timestamp = options.timestamp instanceof Date ? Math.floor(options.timestamp.getTime() / 1000) : options.timestamp
  const signed = sign({ secret: options.secret, rawBody: body, ...(timestamp === undefined ? {} : { timestamp }) })
  return {
    body,
    headers: {
      'Content-Type': 'application/json',
      'User-Agent': SIR_USER_AGENT,
      'X-SIR-Signature': signed.signature,
      'X-SIR-Timestamp': signed.timestamp
    }
  }
}
