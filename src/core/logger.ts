import { pino, type DestinationStream } from 'pino'

interface LogFn {
  (object: object, message?: string): void
  (message: string): void
}

/**
 * The part of a pino logger the receiver uses. Typed structurally so that a
 * pino logger, Fastify's `request.log` and any pino-compatible logger all fit.
 */
export interface WebhookLogger {
  child (bindings: Record<string, unknown>): WebhookLogger
  debug: LogFn
  info: LogFn
  warn: LogFn
  error: LogFn
}

/**
 * The logger used when none is given. The receiver never logs a secret, a
 * signature or a body; these paths are redacted anyway, as a second line of
 * defence against a handler that logs more than it should.
 */
export function defaultLogger (destination?: DestinationStream): WebhookLogger {
  const options = {
    name: 'sir-webhooks',
    redact: {
      paths: ['secret', '*.secret', 'signature', '*.signature', 'rawBody', '*.rawBody', 'headers["x-sir-signature"]', '*.headers["x-sir-signature"]'],
      censor: '[redacted]'
    }
  }
  return destination === undefined ? pino(options) : pino(options, destination)
}

export function isLogger (value: unknown): value is WebhookLogger {
  if (value === null || typeof value !== 'object') return false
  const logger = value as Record<string, unknown>
  return ['child', 'debug', 'info', 'warn', 'error'].every((method) => typeof logger[method] === 'function')
}
