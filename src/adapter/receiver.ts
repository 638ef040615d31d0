// Web APIs only: the fetch adapter imports this on edge runtimes.
import type { Delivery, ReceiveResult } from '../core/delivery.js'
import { WebhookOptionsError, type RefusalCode } from '../core/errors.js'
import { assertKnownOptions } from '../core/known-options.js'
import { assertLogger, isLogger, type WebhookLogger } from '../core/logger.js'

/**
 * What an adapter needs of a receiver. Checked by shape, not `instanceof`, so the
 * Node `Webhooks`, the Web build's and a bare `WebhookReceiver` all fit, and so
 * does a receiver from a second copy of this version of the package.
 */
export interface DeliveryReceiver {
  readonly options: { readonly bodyLimit: number }
  readonly logger: WebhookLogger
  decide (delivery: Delivery, log?: WebhookLogger): ReceiveResult | Promise<ReceiveResult>
  refuse (code: RefusalCode, log?: WebhookLogger, details?: Record<string, unknown>, message?: string): ReceiveResult
  close (): Promise<void>
}

export function assertReceiver (value: unknown, where: string): asserts value is DeliveryReceiver {
  const candidate = value as Partial<DeliveryReceiver> | null
  const fits = candidate !== null && typeof candidate === 'object' &&
    typeof candidate.decide === 'function' && typeof candidate.refuse === 'function' && typeof candidate.close === 'function' &&
    typeof candidate.options?.bodyLimit === 'number' && isLogger(candidate.logger)
  if (!fits) throw new WebhookOptionsError(`${where}: "webhooks" must be a Webhooks instance from sir-webhooks`)
}

/**
 * An adapter's options: an object (or nothing), with no unknown names, and a
 * pino-compatible `logger` where one is given.
 */
export function checkAdapterOptions<O extends object> (options: O | undefined, known: readonly string[], where: string): O {
  if (options === undefined) return {} as O
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new WebhookOptionsError(`${where}: "options" must be an object`)
  }
  assertKnownOptions(options, known, where)
  assertLogger((options as { logger?: unknown }).logger)
  return options
}
