import type { PurgeOptions, PurgeResult } from './inbox.js'
import type { WebhookLogger } from './logger.js'
import { defaults } from './options.js'
import type { ResolvedOptions } from './resolved-options.js'

export interface RetentionOptions {
  /** How long done events are kept; default the receiver's dedupe window. */
  retentionSeconds?: number | undefined
  /** How long dead events are kept; default until re-driven or purged by hand. */
  deadLetterRetentionSeconds?: number | undefined
}

/**
 * What a durable inbox's purge deletes: done and dead events finished before
 * these moments (ms since the epoch; `dead` undefined keeps every dead letter).
 * With `before`, both are that moment; without, each retention counts back from now.
 * Done events are kept as long as duplicates are caught, so a purge never lets a
 * late duplicate through.
 */
export function purgeCutoffs (now: number, options: PurgeOptions, retention: RetentionOptions, receiver: ResolvedOptions | undefined): { done: number, dead: number | undefined } {
  if (options.before !== undefined) return { done: options.before.getTime(), dead: options.before.getTime() }
  const retentionSeconds = retention.retentionSeconds ?? receiver?.dedupe.ttlSeconds ?? defaults.dedupe.ttlSeconds
  const deadSeconds = retention.deadLetterRetentionSeconds
  return { done: now - retentionSeconds * 1000, dead: deadSeconds === undefined ? undefined : now - deadSeconds * 1000 }
}

/** A scheduled purge: logged, never thrown, since nobody awaits it. */
export function purgeQuietly (purge: () => Promise<PurgeResult>, logger: WebhookLogger | undefined, store: string): void {
  purge().then((purged) => {
    if (purged.done + purged.dead > 0) logger?.debug({ purged }, `purged old events from the ${store} inbox`)
  }).catch((error: unknown) => {
    logger?.error({ err: error }, `the ${store} inbox could not purge old events`)
  })
}
