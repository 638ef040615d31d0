import type { InboxHealth } from '../core/inbox.js'

/**
 * Whether the database keeps failing: set by any failed accept, claim or outcome
 * write, cleared by the next one that succeeds. One failure is enough to say
 * "degraded": the next success says "ok" again at once.
 */
export class StoreHealth {
  #failure: { since: number, error: unknown } | undefined

  failed (error: unknown): void {
    this.#failure ??= { since: Date.now(), error }
    this.#failure.error = error
  }

  succeeded (): void {
    this.#failure = undefined
  }

  report (more: { controlError: unknown, starting: boolean }): InboxHealth {
    const reasons: string[] = []
    if (this.#failure !== undefined) reasons.push(`the database has failed since ${new Date(this.#failure.since).toISOString()}: ${errorText(this.#failure.error)}`)
    if (more.controlError !== undefined) reasons.push(`the control connection (LISTEN, attempt counts) is down: ${errorText(more.controlError)}`)
    if (more.starting) reasons.push('the inbox has not reached its tables yet')
    return { status: reasons.length === 0 ? 'ok' : 'degraded', reasons }
  }
}

function errorText (error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
