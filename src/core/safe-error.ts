import type { WebhookLogger } from './logger.js'

/**
 * Error fields that can echo the data a driver was handed, and so a webhook's
 * body: Postgres's `where` ("JSON data, line 1: …"), `detail`, `hint` and
 * `internalQuery`; drivers' `query`, `parameters`, `values` and `sql`; an HTTP
 * client's `config`, `request` and `response` (the body sent, the headers with
 * their credentials). A logged error keeps its class, message, stack, code and
 * every other field.
 */
const ECHOING_FIELDS = new Set([
  'where', 'detail', 'hint', 'internalQuery',
  'query', 'parameters', 'params', 'values', 'args', 'bindings', 'sql',
  'body', 'rawBody', 'data', 'payload',
  'config', 'request', 'response'
])

// Causes within causes: deep enough for any real chain, and a cycle ends.
const MAX_DEPTH = 4

/**
 * `error` as it may be logged: the same error when it holds none of the fields
 * above (the common case, no copy), else a copy of it without them, its `cause`
 * and an AggregateError's `errors` treated the same way. ioredis's `command`
 * keeps its name, not its arguments (a job's data).
 */
export function safeError (error: unknown, depth = 0): unknown {
  if (error === null || typeof error !== 'object') return error
  if (depth >= MAX_DEPTH) return error instanceof Error ? `${error.name}: ${error.message}` : '[error]'
  const source = error as Record<string, unknown>
  const keys = Object.keys(source)
  const nested = 'cause' in source || Array.isArray(source.errors)
  if (!nested && !keys.some(isEchoing)) return error
  const copy = Object.create(Object.getPrototypeOf(error) as object | null) as Record<string, unknown>
  if (error instanceof Error) {
    // Own and non-enumerable on an Error: copied as they are, for the logger's serializer.
    for (const key of ['message', 'stack', 'name'] as const) {
      if (Object.hasOwn(error, key)) Object.defineProperty(copy, key, { value: error[key], writable: true, configurable: true, enumerable: false })
    }
  }
  for (const key of keys) {
    if (key === 'cause' || key === 'errors') continue
    if (key === 'command') copy.command = commandName(source.command)
    else if (!isEchoing(key)) copy[key] = source[key]
  }
  if ('cause' in source) Object.defineProperty(copy, 'cause', { value: safeError(source.cause, depth + 1), writable: true, configurable: true, enumerable: false })
  if (Array.isArray(source.errors)) copy.errors = source.errors.map((inner: unknown) => safeError(inner, depth + 1))
  else if ('errors' in source) copy.errors = source.errors
  return copy
}

function isEchoing (key: string): boolean {
  return ECHOING_FIELDS.has(key)
}

function commandName (command: unknown): unknown {
  if (command === null || typeof command !== 'object') return command
  const { name } = command as { name?: unknown }
  return name === undefined ? '[command]' : { name }
}

type Level = 'debug' | 'info' | 'warn' | 'error'

/**
 * The logger, with every `err` field it is given made safe first. The receiver
 * gives this to its inbox (`runtime.logger`) and its handlers, so an error a
 * store or a handler logs is made safe in this one place, whichever inbox it is.
 */
export function errorSafeLogger (logger: WebhookLogger): WebhookLogger {
  const at = (level: Level) => (fields: object | string, message?: string): void => {
    const safe = typeof fields === 'object' && fields !== null && 'err' in fields
      ? { ...fields, err: safeError((fields as { err: unknown }).err) }
      : fields
    if (message === undefined) logger[level](safe as object)
    else logger[level](safe as object, message)
  }
  const safe: WebhookLogger = {
    child: (bindings) => errorSafeLogger(logger.child(bindings)),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error')
  }
  if (typeof logger.isLevelEnabled === 'function') safe.isLevelEnabled = (level) => logger.isLevelEnabled?.(level) ?? true
  return safe
}
