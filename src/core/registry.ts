import { WebhookOptionsError } from './errors.js'
import type { AnyEventHandler, DeadLetterHandler, ErrorHandler, RegisteredHandler } from './handlers.js'
import { resolveLimits, type HandlerLimits } from './flow/limits.js'

export interface HandlerOptions extends HandlerLimits {
  /**
   * A stable name for logs, dead letters and, with a durable inbox, the record of
   * which handlers of an event already succeeded. Default: the function's name.
   */
  name?: string
}

/** Every handler option there is: anything else is refused, as the receiver's unknown options are. */
const HANDLER_OPTIONS: readonly string[] = ['name', 'concurrency', 'rate']

export type Registration = AnyEventHandler | ErrorHandler | DeadLetterHandler

// An unnamed handler (an arrow function) is labelled after what it was registered
// for, so metrics, logs and dead letters tell two of them apart; a set of labels as
// small as the list of registrations, never one per event.
const UNNAMED = 'anonymous'

/**
 * Who handles what: handlers by event type, the `onAny` ones, and the failure
 * callbacks. Lists are replaced, never changed in place, so an inbox holding the
 * list it was given for an event in flight is not surprised by a later `on()`.
 */
export class HandlerRegistry {
  readonly #byType = new Map<string, readonly RegisteredHandler[]>()
  #any: readonly RegisteredHandler[] = []
  #onError: readonly ErrorHandler[] = []
  #onDeadLetter: readonly DeadLetterHandler[] = []
  /**
   * With a durable inbox a handler's name is the key of its success record, kept
   * across restarts and redeploys: it must exist and be unique among the handlers
   * an event can reach, or a retry could skip the wrong handler.
   */
  readonly #namesAreKeys: boolean
  /** How many unnamed handlers got each label so far: the second is `…#2`. */
  readonly #unnamedLabels = new Map<string, number>()

  /** Undefined when the inbox has flow control; otherwise its name, for the refusal of `concurrency` and `rate`. */
  readonly #noFlowControl: string | undefined

  constructor (namesAreKeys: boolean, noFlowControl?: string) {
    this.#namesAreKeys = namesAreKeys
    this.#noFlowControl = noFlowControl
  }

  add (types: readonly string[], fn: AnyEventHandler, options: HandlerOptions | undefined, method: 'on' | 'onAny'): void {
    const registered = this.#registered(fn, options, method, types)
    if (method === 'onAny') {
      this.#assertUnique(registered, [...this.#byType.values()].flat(), method)
      this.#any = [...this.#any, registered]
      return
    }
    for (const type of types) this.#assertUnique(registered, this.#byType.get(type) ?? [], method)
    for (const type of types) this.#byType.set(type, [...(this.#byType.get(type) ?? []), registered])
  }

  addErrorHandler (fn: ErrorHandler): void {
    assertFunction(fn, 'onError')
    this.#onError = [...this.#onError, fn]
  }

  addDeadLetterHandler (fn: DeadLetterHandler): void {
    assertFunction(fn, 'onDeadLetter')
    this.#onDeadLetter = [...this.#onDeadLetter, fn]
  }

  /** Removes `fn` from the given types, or, without types, from everything it was registered with. */
  remove (fn: unknown, types?: readonly string[]): void {
    for (const type of types ?? [...this.#byType.keys()]) {
      const list = this.#byType.get(type)
      if (list !== undefined) this.#byType.set(type, list.filter((entry) => entry.fn !== fn))
    }
    if (types !== undefined) return
    this.#any = this.#any.filter((entry) => entry.fn !== fn)
    this.#onError = this.#onError.filter((entry) => entry !== fn)
    this.#onDeadLetter = this.#onDeadLetter.filter((entry) => entry !== fn)
  }

  /** True once any event handler (`on` or `onAny`) is registered. */
  get hasHandlers (): boolean {
    if (this.#any.length > 0) return true
    // Durable inboxes ask before every claim: no array built for it.
    for (const list of this.#byType.values()) if (list.length > 0) return true
    return false
  }

  /** Every handler that should see an event of this type, the `onAny` ones last. */
  handlersFor (type: string): readonly RegisteredHandler[] {
    const specific = this.#byType.get(type)
    if (specific === undefined || specific.length === 0) return this.#any
    return this.#any.length === 0 ? specific : [...specific, ...this.#any]
  }

  get errorHandlers (): readonly ErrorHandler[] {
    return this.#onError
  }

  get deadLetterHandlers (): readonly DeadLetterHandler[] {
    return this.#onDeadLetter
  }

  #registered (fn: AnyEventHandler, options: HandlerOptions | undefined, method: 'on' | 'onAny', types: readonly string[]): RegisteredHandler {
    assertFunction(fn, method)
    if (options !== undefined && (options === null || typeof options !== 'object')) {
      throw new WebhookOptionsError(`${method}(): "options" must be an object such as { name: 'credit-tokens' }`)
    }
    assertHandlerOptions(options ?? {}, method)
    const given = options?.name
    if (given !== undefined && (typeof given !== 'string' || given.trim() === '' || given.trim() !== given)) {
      throw new WebhookOptionsError(`${method}(): "name" must be a non-empty string without surrounding whitespace, got ${JSON.stringify(given)}`)
    }
    const name = given ?? fn.name
    if (name === '' && this.#namesAreKeys) {
      const call = method === 'onAny' ? 'webhooks.onAny(handler, { name: \'audit-events\' })' : 'webhooks.on(type, handler, { name: \'credit-tokens\' })'
      const named = method === 'onAny' ? 'async function auditEvents (event) {…}' : 'async function creditTokens (event) {…}'
      throw new WebhookOptionsError(`${method}(): a durable inbox records which handlers of an event succeeded by name, and this handler has none. ` +
        `Give it one: ${call}, or a named function (${named})`)
    }
    const limits = resolveLimits(options ?? {}, method)
    if (limits !== undefined && this.#noFlowControl !== undefined) {
      // Refused rather than ignored: a limit that is not kept is a partner API's
      // 429s and dead letters on the first burst.
      throw new WebhookOptionsError(`${method}(): "${limits.rate !== undefined ? 'rate' : 'concurrency'}" needs an inbox with flow control, and ${this.#noFlowControl} has none; ` +
        'every built-in inbox has it (docs/design.md, "Flow control")')
    }
    const label = name === '' ? this.#unnamedLabel(method, types) : name
    return Object.freeze(limits === undefined ? { name: label, fn } : { name: label, fn, limits })
  }

  /** Every event handler registered now, once each (a handler on several types is one), `onAny` ones last. */
  get handlers (): readonly RegisteredHandler[] {
    return [...new Set([...[...this.#byType.values()].flat(), ...this.#any])]
  }

  /** Whether some registered event handler has this name. */
  hasName (name: string): boolean {
    if (this.#any.some((entry) => entry.name === name)) return true
    for (const list of this.#byType.values()) if (list.some((entry) => entry.name === name)) return true
    return false
  }

  /** `anonymous:action.completed`, `anonymous:*` for `onAny`, `…#2` for the second of the same. */
  #unnamedLabel (method: 'on' | 'onAny', types: readonly string[]): string {
    const label = `${UNNAMED}:${method === 'onAny' ? '*' : types.join(',')}`
    const count = (this.#unnamedLabels.get(label) ?? 0) + 1
    this.#unnamedLabels.set(label, count)
    return count === 1 ? label : `${label}#${count}`
  }

  #assertUnique (registered: RegisteredHandler, others: readonly RegisteredHandler[], method: string): void {
    if (!this.#namesAreKeys) return
    const clash = [...others, ...this.#any].find((entry) => entry.name === registered.name && entry.fn !== registered.fn)
    if (clash !== undefined) {
      throw new WebhookOptionsError(`${method}(): another handler of the same events is already named "${registered.name}"; ` +
        'a durable inbox tells handlers apart by name, so give each a different one with { name }')
    }
  }
}

function assertHandlerOptions (options: object, method: string): void {
  for (const option of Object.keys(options)) {
    if (HANDLER_OPTIONS.includes(option)) continue
    // Not "did you mean": with one option, "rate" is not a misspelt "name"; it is a
    // receiver setting (or no setting at all) put in the wrong place.
    throw new WebhookOptionsError(`${method}(): unknown handler option "${option}"; the handler options are ${HANDLER_OPTIONS.map((known) => `"${known}"`).join(', ')} ` +
      '(retries, the total concurrency and the queue are set for the whole receiver: new Webhooks({ retry, concurrency, maxQueueSize }))')
  }
}

function assertFunction (handler: unknown, method: string): void {
  if (typeof handler !== 'function') throw new WebhookOptionsError(`${method}(): the handler must be a function, got ${typeof handler}`)
}
