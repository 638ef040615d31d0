import type { DeferralCounts } from '../core/flow/gate.js'
import type { FlowStore } from '../core/flow/store.js'
import type { HandlerStats } from '../core/stats.js'
import type { DashboardReceiver } from './options.js'

/** One row of the Handlers page. */
export interface HandlerRow {
  name: string
  /** This process's figures; undefined in the CLI's dashboard (no receiver here). */
  stats?: HandlerStats
  /** Runs put off by flow control, by why; undefined where none were. */
  deferred?: DeferralCounts
  /** Held back now: by its own pause or by a pause of all. */
  paused: boolean
}

/** What the Handlers page shows. */
export interface HandlersData {
  /**
   * `receiver`: a receiver runs in this process, pause goes through `webhooks.pause()`.
   * `store`: no receiver here (the CLI's dashboard), pause goes to the inbox's flow store.
   * `none`: the inbox has no flow control: nothing can be paused.
   */
  flow: 'receiver' | 'store' | 'none'
  /** Where the pause is kept (`this process`, `Redis`), where there is flow control. */
  scope?: string
  pausedAll: boolean
  /** False in the CLI's dashboard: runs, failures and durations are counted by each receiver. */
  figures: boolean
  rows: HandlerRow[]
}

/**
 * The Handlers page's data and its pause and resume. With a receiver in the
 * process, its `stats()` and `pause()`/`resume()`: the receiver's flow gate then
 * knows at once, and on a shared store (BullMQ) every receiver does within its
 * refresh. Without one (the CLI's dashboard), the inbox's flow store directly.
 */
export class FlowControl {
  readonly #webhooks: DashboardReceiver
  #store: FlowStore | undefined

  constructor (webhooks: DashboardReceiver) {
    this.#webhooks = webhooks
  }

  get #mode (): HandlersData['flow'] {
    if (typeof this.#webhooks.inbox.flowStore !== 'function') return 'none'
    return this.#webhooks.stats !== undefined && typeof this.#webhooks.pause === 'function' ? 'receiver' : 'store'
  }

  get available (): boolean {
    return this.#mode !== 'none'
  }

  /** Asked for once: the memory inbox makes a new store on each call, and the receiver already holds its own. */
  #flowStore (): FlowStore {
    this.#store ??= this.#webhooks.inbox.flowStore!()
    return this.#store
  }

  async data (): Promise<HandlersData> {
    const mode = this.#mode
    const stats = this.#webhooks.stats?.()
    if (stats !== undefined) {
      const { byName } = stats.handlers
      const flow = stats.flow.handlers
      const names = [...new Set([...Object.keys(byName), ...Object.keys(flow)])].sort()
      const rows = names.map((name): HandlerRow => {
        const handlerStats = byName[name]
        const deferred = flow[name]?.deferred
        return { name, ...(handlerStats === undefined ? {} : { stats: handlerStats }), ...(deferred === undefined ? {} : { deferred }), paused: stats.flow.pausedAll || flow[name]?.paused === true }
      })
      const scope = mode === 'none' ? undefined : this.#flowStore().scope
      return { flow: mode, ...(scope === undefined ? {} : { scope }), pausedAll: stats.flow.pausedAll, figures: true, rows }
    }
    if (mode === 'none') return { flow: mode, pausedAll: false, figures: false, rows: [] }
    const store = this.#flowStore()
    // The store's pause state as last read: with no receiver here nothing refreshes it in the background.
    await store.refresh?.()
    const { all, handlers } = store.pauseState()
    return { flow: mode, scope: store.scope, pausedAll: all, figures: false, rows: [...handlers].sort().map((name) => ({ name, paused: true })) }
  }

  /** Whether a handler name posted by the page is one it could have shown: any name in the CLI's dashboard. */
  knows (name: string, data: HandlersData): boolean {
    return data.flow === 'store' || data.rows.some((row) => row.name === name)
  }

  /** Pauses or resumes one handler, or every one (`handler` undefined). */
  async set (handler: string | undefined, paused: boolean): Promise<void> {
    if (this.#mode === 'receiver') {
      await (paused ? this.#webhooks.pause!(handler) : this.#webhooks.resume!(handler))
      return
    }
    await this.#flowStore().setPaused(handler, paused)
  }
}
