import type { WebhookLogger } from './logger.js'

// The default logger on runtimes without pino's Node transport (Workers, Vercel
// Edge): one JSON line per entry on the console, in pino's shape (numeric
// level, time, msg) so log pipelines parse both alike. Info and above.

const LEVELS = { debug: 20, info: 30, warn: 40, error: 50 } as const
type Level = keyof typeof LEVELS

const REDACTED_KEYS = new Set(['secret', 'signature', 'rawBody', 'x-sir-signature'])

/** Errors carry non-enumerable fields; other values are copied with secrets masked two levels deep. */
function serialize (value: unknown, depth: number): unknown {
  if (value instanceof Error) return { type: value.name, message: value.message, stack: value.stack }
  if (value === null || typeof value !== 'object' || depth > 2 || Array.isArray(value)) return value
  const copy: Record<string, unknown> = {}
  for (const [key, field] of Object.entries(value)) copy[key] = REDACTED_KEYS.has(key) ? '[redacted]' : serialize(field, depth + 1)
  return copy
}

export function consoleLogger (bindings: Record<string, unknown> = { name: 'sir-webhooks' }, write: (line: string) => void = (line) => { console.log(line) }): WebhookLogger {
  const entry = (level: Level) => (objectOrMessage: object | string, message?: string): void => {
    const fields = typeof objectOrMessage === 'string' ? {} : serialize(objectOrMessage, 0) as Record<string, unknown>
    const msg = typeof objectOrMessage === 'string' ? objectOrMessage : message
    write(JSON.stringify({ level: LEVELS[level], time: Date.now(), ...bindings, ...fields, msg }))
  }
  const ignore = (): void => {}
  return {
    child: (more) => consoleLogger({ ...bindings, ...(serialize(more, 0) as Record<string, unknown>) }, write),
    debug: ignore,
    info: entry('info'),
    warn: entry('warn'),
    error: entry('error'),
    isLevelEnabled: (level) => level !== 'debug' && level !== 'trace'
  }
}
