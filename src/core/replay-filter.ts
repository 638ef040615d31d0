import type { OutcomeState } from './outcome.js'

/**
 * Which stored events a replay touches (`sir-webhooks inbox redrive --type …`,
 * `webhooks.replay(filter)`, the dashboard's filtered redrive). Every field but
 * `state` narrows the set; all are ANDed.
 */
export interface ReplayFilter {
  /** `dead`: re-drive dead letters. `done`: re-run finished events (a deliberate replay after a handler fix). */
  state: Exclude<OutcomeState, 'pending'>
  /** Only events of this type. */
  type?: string
  /** Only events received at or after this moment. */
  since?: Date
  /** Only events received before this moment. */
  until?: Date
  /**
   * Only this handler: for `dead`, events this handler failed; for `done`, only
   * this handler is run again (the others keep their "handled" mark).
   */
  handler?: string
}
