import { pino, type DestinationStream } from 'pino'
import type { WebhookLogger } from './logger.js'

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
