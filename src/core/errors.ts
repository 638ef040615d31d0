/**
 * Every refusal the receiver can make, with the HTTP status the contract gives it.
 * A status lives beside its code so that every adapter answers the same way.
 */
export const refusalStatus = {
  MISSING_SIGNATURE: 401,
  MALFORMED_SIGNATURE: 401,
  SIGNATURE_MISMATCH: 401,
  MISSING_TIMESTAMP: 401,
  INVALID_TIMESTAMP: 401,
  TIMESTAMP_OUT_OF_RANGE: 401,
  INVALID_JSON: 400,
  INVALID_ENVELOPE: 400,
  EVENT_ID_TOO_LONG: 400,
  UNSUPPORTED_MEDIA_TYPE: 415,
  BODY_TOO_LARGE: 413,
  QUEUE_FULL: 503,
  CLOSING: 503,
  INBOX_UNAVAILABLE: 503,
  RAW_BODY_UNAVAILABLE: 500
} as const

export type RefusalCode = keyof typeof refusalStatus
export type VerificationErrorCode =
  | 'MISSING_SIGNATURE'
  | 'MALFORMED_SIGNATURE'
  | 'SIGNATURE_MISMATCH'
  | 'MISSING_TIMESTAMP'
  | 'INVALID_TIMESTAMP'
  | 'TIMESTAMP_OUT_OF_RANGE'

const refusalMessages: Record<RefusalCode, string> = {
  MISSING_SIGNATURE: 'The X-SIR-Signature header is missing',
  MALFORMED_SIGNATURE: 'The X-SIR-Signature header is not of the form sha256=<64 lowercase hex digits>',
  SIGNATURE_MISMATCH: 'The signature does not match the timestamp and body',
  MISSING_TIMESTAMP: 'The X-SIR-Timestamp header is missing',
  INVALID_TIMESTAMP: 'The X-SIR-Timestamp header is not a whole number of seconds',
  TIMESTAMP_OUT_OF_RANGE: 'The X-SIR-Timestamp header is outside the accepted window',
  INVALID_JSON: 'The body is not valid JSON',
  INVALID_ENVELOPE: 'The body is not an event envelope: "id", "type" and "createdAt" must be non-empty strings and "data" an object',
  EVENT_ID_TOO_LONG: 'The event "id" is longer than 256 bytes of UTF-8',
  UNSUPPORTED_MEDIA_TYPE: 'The body must be application/json and not content-encoded',
  BODY_TOO_LARGE: 'The body is larger than the receiver accepts',
  QUEUE_FULL: 'The receiver is at capacity; retry later',
  CLOSING: 'The receiver is shutting down; retry later',
  INBOX_UNAVAILABLE: 'The inbox could not record the event; retry later',
  RAW_BODY_UNAVAILABLE: 'The raw request body was consumed before the webhook receiver could verify it'
}

export function refusalMessage (code: RefusalCode): string {
  return refusalMessages[code]
}

/**
 * The one error class of the package. `statusCode` follows the Fastify and
 * http-errors convention, so frameworks that look for it answer correctly.
 */
export class WebhookError extends Error {
  readonly code: string
  readonly statusCode: number

  constructor (code: string, message: string, statusCode: number, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'WebhookError'
    this.code = code
    this.statusCode = statusCode
  }

  static refusal (code: RefusalCode, detail?: string): WebhookError {
    const message = detail === undefined ? refusalMessages[code] : `${refusalMessages[code]}: ${detail}`
    return new WebhookError(code, message, refusalStatus[code])
  }
}

/** Thrown at construction or registration when an option is wrong; never at request time. */
export class WebhookOptionsError extends WebhookError {
  constructor (message: string) {
    super('INVALID_OPTION', `sir-webhooks: ${message}`, 500)
    this.name = 'WebhookOptionsError'
  }
}
