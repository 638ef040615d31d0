import type { RefusalCode } from './errors.js'
import type { WebhookLogger } from './logger.js'

/** How long, after a refusal is logged in full, the others of its reason are only counted. */
export const REFUSAL_LOG_INTERVAL_MS = 10_000

export type RefusalLevel = 'info' | 'warn' | 'error'

interface Window {
  openedAt: number
  /** Refusals of this reason since the one logged in full, not logged one by one. */
  refused: number
  level: RefusalLevel
  timer: ReturnType<typeof setTimeout> | undefined
}

/**
 * Logs refusals at a bounded rate, whatever the rate of refusals. The first
 * refusal of a reason is logged in full, with its fields (a misconfiguration is
 * as visible as before); the next ones of that reason within the interval are
 * only counted, and when the interval ends one line says how many there were.
 * A flood of unsigned or badly signed requests, which costs an attacker nothing,
 * so costs at most two lines per reason per interval: logged one per refusal,
 * 14 000 refusals a second wrote 1.9 MB of logs a second.
 *
 * The interval is read on the receiver's clock when a refusal arrives and kept
 * by a timer (unref'd) when none does, so the count of a flood that stopped is
 * still written; `flush()` (on close) writes every count left.
 */
export class RefusalLog {
  readonly #clock: () => number
  readonly #logger: WebhookLogger
  readonly #intervalMs: number
  readonly #windows = new Map<RefusalCode, Window>()

  /** `logger` gets the count lines: they sum up many requests, so no request's logger. */
  constructor (clock: () => number, logger: WebhookLogger, intervalMs = REFUSAL_LOG_INTERVAL_MS) {
    this.#clock = clock
    this.#logger = logger
    this.#intervalMs = intervalMs
  }

  /** A refusal: logged in full to `log` when it is the first of its reason in the interval, else counted. */
  refused (code: RefusalCode, level: RefusalLevel, log: WebhookLogger, fields: Record<string, unknown>, message: string): void {
    const now = this.#clock()
    const open = this.#windows.get(code)
    if (open !== undefined) {
      if (now - open.openedAt < this.#intervalMs) {
        open.refused += 1
        return
      }
      this.#close(code, open)
    }
    log[level](fields, message)
    const window: Window = { openedAt: now, refused: 0, level, timer: undefined }
    window.timer = setTimeout(() => { this.#close(code, window) }, this.#intervalMs)
    // Node's timers would keep a process alive for a log line; elsewhere there is no unref.
    ;(window.timer as { unref?: () => void }).unref?.()
    this.#windows.set(code, window)
  }

  /** Writes the count of every reason whose interval is still open. */
  flush (): void {
    for (const [code, window] of this.#windows) this.#close(code, window)
  }

  #close (code: RefusalCode, window: Window): void {
    if (this.#windows.get(code) !== window) return
    this.#windows.delete(code)
    clearTimeout(window.timer)
    if (window.refused === 0) return
    const seconds = this.#intervalMs / 1000
    this.#logger[window.level](
      { reason: code, refused: window.refused, intervalSeconds: seconds },
      `${window.refused} more deliveries refused for ${code} within ${seconds} s of the one logged, not logged one by one`
    )
  }
}
