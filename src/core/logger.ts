import { WebhookOptionsError } from './errors.js'

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
  /**
   * pino's: whether a level would be written. Where a logger has it, the receiver
   * skips building the fields of a line that would be dropped (the per-delivery
   * `debug` line, two objects per accepted event).
   */
  isLevelEnabled?: (level: string) => boolean
}

export function isLogger (value: unknown): value is WebhookLogger {
  if (value === null || typeof value !== 'object') return false
  const logger = value as Record<string, unknown>
  return ['child', 'debug', 'info', 'warn', 'error'].every((method) => typeof logger[method] === 'function')
}

/** For a `logger` option, wherever one is taken. */
export function assertLogger (value: unknown): void {
  if (value !== undefined && !isLogger(value)) {
    throw new WebhookOptionsError('"logger" must be a pino logger (an object with child(), debug(), info(), warn() and error())')
  }
}
