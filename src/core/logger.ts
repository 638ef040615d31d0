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

export function isLogger (value: unknown): value is WebhookLogger {
  if (value === null || typeof value !== 'object') return false
  const logger = value as Record<string, unknown>
  return ['child', 'debug', 'info', 'warn', 'error'].every((method) => typeof logger[method] === 'function')
}
