import type { Inbox } from './inbox.js'
import type { WebhookLogger } from './logger.js'
import type { HandlerRuntime } from './runtime.js'

/**
 * An inbox's life inside its receiver: started once (possibly asynchronously),
 * closed once within the grace period. The pipeline asks it whether deliveries
 * may be accepted yet, or any more.
 */
export class InboxLifecycle {
  readonly #inbox: Inbox
  readonly #runtime: HandlerRuntime
  readonly #closeGraceMs: number
  readonly #starting: Promise<void> | undefined
  #startFailed = false
  /** The asynchronous start has ended, one way or the other. */
  #startSettled = false
  #closing: Promise<void> | undefined

  constructor (inbox: Inbox, runtime: HandlerRuntime, logger: WebhookLogger, closeGraceMs: number) {
    this.#inbox = inbox
    this.#runtime = runtime
    this.#closeGraceMs = closeGraceMs
    const started = inbox.start(runtime)
    if (started !== undefined) {
      this.#starting = started.then(() => { this.#startSettled = true }, (error: unknown) => {
        this.#startFailed = true
        this.#startSettled = true
        logger.error({ err: error }, 'the inbox failed to start; deliveries are answered 503 until it does')
      })
    }
  }

  /** While an asynchronous start is under way, the promise of its end; afterwards undefined, at no cost. */
  get starting (): Promise<void> | undefined {
    return this.#starting === undefined || this.#startSettled ? undefined : this.#starting
  }

  get startFailed (): boolean {
    return this.#startFailed
  }

  get closing (): boolean {
    return this.#closing !== undefined
  }

  /**
   * Stops accepting, waits up to the grace period for every accepted event to
   * finish or dead-letter, dead-letters what is left, then aborts handlers' signals.
   * Safe to call more than once.
   */
  close (): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#starting !== undefined) await this.#starting
      // Handlers are told to stop when the grace period ends, before the inbox
      // reports what is left, so a cooperative handler is not still running while
      // its event is dead-lettered or handed to another process.
      const reason = new Error('sir-webhooks: the receiver closed')
      const abortAtGraceEnd = setTimeout(() => { this.#runtime.abort(reason) }, this.#closeGraceMs)
      try {
        await this.#inbox.close(this.#closeGraceMs)
      } finally {
        clearTimeout(abortAtGraceEnd)
        this.#runtime.abort(reason)
      }
    })()
    return this.#closing
  }
}
