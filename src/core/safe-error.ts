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

// pino's level methods, and what the WebhookLogger shape has of them.
const LEVELS = new Set<PropertyKey>(['trace', 'debug', 'info', 'warn', 'error', 'fatal'])

/** A log call's first argument made safe: an Error itself (pino's `log.error(err, 'msg')`) or an object's `err`. */
function safeFirst (first: unknown): unknown {
  if (first instanceof Error) return safeError(first)
  if (first !== null && typeof first === 'object' && 'err' in first) return { ...first, err: safeError((first as { err: unknown }).err) }
  return first
}

/**
 * The logger, with every error it is given made safe first, whether as `{ err }` or
 * as pino's error-first form. The receiver gives this to its inbox
 * (`runtime.logger`) and its handlers, so an error a store or a handler logs is
 * made safe in this one place, whichever inbox it is. Everything else (pino's
 * `trace`, `fatal`, `level`, `bindings()`…) passes through to the logger itself,
 * so a handler's `log` is still the logger the user configured.
 */
export function errorSafeLogger<L extends WebhookLogger> (logger: L): L {
  // Keyed by the method, not its name: pino swaps a level's method for a no-op
  // when the level changes, and the wrapper must follow.
  const wrapped = { child: new WeakMap<object, unknown>(), level: new WeakMap<object, unknown>(), other: new WeakMap<object, unknown>() }
  return new Proxy(logger, {
    get (target, property) {
      const value: unknown = Reflect.get(target, property, target)
      if (typeof value !== 'function') return value
      const method = value as (...args: unknown[]) => unknown
      const kind = property === 'child' ? 'child' : LEVELS.has(property) ? 'level' : 'other'
      let wrapper = wrapped[kind].get(method)
      if (wrapper === undefined) {
        if (kind === 'child') wrapper = (...args: unknown[]) => errorSafeLogger(method.apply(target, args) as WebhookLogger)
        else if (kind === 'level') wrapper = (first: unknown, ...rest: unknown[]) => method.call(target, safeFirst(first), ...rest)
        else wrapper = method.bind(target)
        wrapped[kind].set(method, wrapper)
      }
      return wrapper
    }
  })
}
