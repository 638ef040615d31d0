import { WebhookOptionsError } from '../core/errors.js'
import type { Inbox } from '../core/inbox.js'
import { assertKnownOptions } from '../core/known-options.js'
import type { WebhookHealth } from '../core/health.js'
import type { WebhookLogger } from '../core/logger.js'
import type { WebhookStats } from '../core/stats.js'

/** What the dashboard uses of an inbox, each where the inbox has it. */
export type DashboardInbox = Pick<Inbox, 'counts' | 'outcome' | 'deadLetters' | 'redrive' | 'purge' | 'events' | 'health' | 'flowStore' | 'countMatching' | 'requeue'>

/**
 * What the dashboard reads of a receiver: a `Webhooks` instance fits. Without
 * `stats` and `health` (the CLI's dashboard on a store alone, with no receiver in
 * the process) the overview shows the store's counts and says what it cannot show.
 */
export interface DashboardReceiver {
  readonly inbox: DashboardInbox
  stats? (): WebhookStats
  health? (): WebhookHealth
  /** Flow control's pause and resume (the Handlers page's buttons), where the receiver has them. */
  pause? (handlerName?: string): Promise<void>
  resume? (handlerName?: string): Promise<void>
  /** Where a store's failure on a page is logged. */
  readonly logger?: Pick<WebhookLogger, 'error'>
}

export interface DashboardOptions<Req = unknown> {
  /** The receiver to show (its counters, health and inbox). */
  webhooks: DashboardReceiver
  /**
   * Decides, per request, whether it may see the dashboard: true lets it in,
   * false answers 403. Runs before every page, asset and action. Give this,
   * `basicAuth`, or both (then both must pass).
   */
  authorize?: (request: Req) => boolean | Promise<boolean>
  /** HTTP Basic credentials, compared in constant time; a request without them gets 401. */
  basicAuth?: { username: string, password: string }
  /** Hides every action and refuses any that is posted (403). */
  readOnly?: boolean
  /** Where the dashboard is mounted. Fastify: its register option; node:http and Express: the full path. */
  prefix?: string
  /** How often the overview's samples are taken, in ms. Default 5000; an hour of them is kept. */
  sampleIntervalMs?: number
  /** The page's title, to tell two dashboards apart. */
  title?: string
}

export interface CheckedOptions<Req> {
  webhooks: DashboardReceiver
  authorize: ((request: Req) => boolean | Promise<boolean>) | undefined
  basicAuth: { username: string, password: string } | undefined
  readOnly: boolean
  sampleIntervalMs: number
  title: string
}

export const KNOWN_OPTIONS = ['webhooks', 'authorize', 'basicAuth', 'readOnly', 'prefix', 'sampleIntervalMs', 'title'] as const
const WHERE = 'the dashboard'

/** Checks the options once, at registration, with messages that name the option. */
export function checkOptions<Req> (options: unknown, extraKnown: readonly string[] = []): CheckedOptions<Req> {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new WebhookOptionsError(`${WHERE}: options must be an object with "webhooks" and "authorize" (or "basicAuth")`)
  }
  assertKnownOptions(options, [...KNOWN_OPTIONS, ...extraKnown], WHERE)
  const given = options as Partial<DashboardOptions<Req>>
  const webhooks = given.webhooks
  if (webhooks === null || typeof webhooks !== 'object' || webhooks.inbox === null || typeof webhooks.inbox !== 'object' ||
    (webhooks.stats !== undefined && typeof webhooks.stats !== 'function') || (webhooks.health !== undefined && typeof webhooks.health !== 'function') ||
    (webhooks.pause !== undefined && typeof webhooks.pause !== 'function') || (webhooks.resume !== undefined && typeof webhooks.resume !== 'function')) {
    throw new WebhookOptionsError(`${WHERE}: "webhooks" must be a Webhooks instance from sir-webhooks`)
  }
  if (given.authorize !== undefined && typeof given.authorize !== 'function') {
    throw new WebhookOptionsError(`${WHERE}: "authorize" must be a function (request) => boolean`)
  }
  const basicAuth = given.basicAuth
  if (basicAuth !== undefined && (basicAuth === null || typeof basicAuth !== 'object' ||
    typeof basicAuth.username !== 'string' || basicAuth.username.length === 0 || basicAuth.username.includes(':') ||
    typeof basicAuth.password !== 'string' || basicAuth.password.length < 12)) {
    throw new WebhookOptionsError(`${WHERE}: "basicAuth" must be { username, password }: a username without ":" and a password of at least 12 characters`)
  }
  if (given.authorize === undefined && basicAuth === undefined) {
    // Closed by default: a dashboard anyone can open re-drives and purges events.
    throw new WebhookOptionsError(`${WHERE}: give "authorize" (a function (request) => boolean, after your app's own authentication) or "basicAuth" credentials; it never runs open`)
  }
  if (given.readOnly !== undefined && typeof given.readOnly !== 'boolean') {
    throw new WebhookOptionsError(`${WHERE}: "readOnly" must be true or false, got ${JSON.stringify(given.readOnly)}`)
  }
  const sampleIntervalMs = given.sampleIntervalMs ?? 5_000
  if (!Number.isInteger(sampleIntervalMs) || sampleIntervalMs < 100) {
    throw new WebhookOptionsError(`${WHERE}: "sampleIntervalMs" must be an integer of at least 100, got ${JSON.stringify(given.sampleIntervalMs)}`)
  }
  if (given.prefix !== undefined && (typeof given.prefix !== 'string' || !/^\/[\w\-./~]*$/.test(given.prefix))) {
    throw new WebhookOptionsError(`${WHERE}: "prefix" must be a path starting with "/", such as "/ops/webhooks", got ${JSON.stringify(given.prefix)}`)
  }
  if (given.title !== undefined && typeof given.title !== 'string') {
    throw new WebhookOptionsError(`${WHERE}: "title" must be a string`)
  }
  return {
    webhooks,
    authorize: given.authorize,
    basicAuth,
    readOnly: given.readOnly ?? false,
    sampleIntervalMs,
    title: given.title ?? 'sir-webhooks'
  }
}
