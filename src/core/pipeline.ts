import type { RefusalCode } from './errors.js'
import { ACCEPTED, DUPLICATE, isEncoded, isJsonContentType, overLimit, refusalResults, type Delivery, type ReceiveCode, type ReceiveResult } from './delivery.js'
import { parseEnvelope } from './envelope.js'
import type { AnyEvent } from './events.js'
import type { AcceptOutcome, Inbox } from './inbox.js'
import type { InboxLifecycle } from './lifecycle.js'
import type { WebhookLogger } from './logger.js'
import type { ResolvedOptions } from './options.js'
import { RefusalLog } from './refusal-log.js'
import { safeError } from './safe-error.js'
import { eventTag } from './run-context.js'
import type { ReceiverStats } from './stats.js'
import type { Telemetry } from './telemetry.js'
import type { VerifyRequest, VerifyResult } from './signature-checks.js'

export type Verifier = (input: VerifyRequest) => VerifyResult | Promise<VerifyResult>

const outcomeRefusal: Record<Exclude<AcceptOutcome, 'accepted' | 'duplicate' | 'duplicate-differs'>, RefusalCode> = {
  full: 'QUEUE_FULL',
  unavailable: 'INBOX_UNAVAILABLE'
}

/**
 * One delivery's way through the receiver: media type, size, signature, envelope,
 * then the inbox; every refusal, the adapters' own included, is answered and
 * logged by `refuse`. Never throws or rejects.
 */
export class DeliveryPipeline {
  readonly #options: ResolvedOptions
  readonly #verify: Verifier
  readonly #inbox: Inbox
  readonly #lifecycle: InboxLifecycle
  readonly #refusals: Readonly<Record<RefusalCode, ReceiveResult>>
  readonly #stats: ReceiverStats
  readonly #refusalLog: RefusalLog
  // Undefined unless telemetry is on: an answer then costs one field check.
  readonly #telemetry: Telemetry | undefined

  constructor (options: ResolvedOptions, verify: Verifier, inbox: Inbox, lifecycle: InboxLifecycle, stats: ReceiverStats, telemetry: Telemetry | undefined, logger: WebhookLogger) {
    this.#options = options
    this.#verify = verify
    this.#inbox = inbox
    this.#lifecycle = lifecycle
    this.#refusals = refusalResults(options.retryAfterSeconds)
    this.#stats = stats
    this.#telemetry = telemetry
    this.#refusalLog = new RefusalLog(options.clock, logger)
  }

  /**
   * The answer itself when every step is synchronous (the Node verifier and the
   * in-memory inbox), a promise only when a step is not (Web Crypto, a durable
   * inbox). On the hot path that spares a promise and the microtask hops before
   * the 2xx can be written.
   */
  decide (delivery: Delivery, log: WebhookLogger): ReceiveResult | Promise<ReceiveResult> {
    const { rawBody } = delivery
    if (!isJsonContentType(delivery.contentType) || isEncoded(delivery.contentEncoding)) {
      return this.refuse('UNSUPPORTED_MEDIA_TYPE', log, { bodyLength: rawBody.byteLength })
    }
    if (overLimit(rawBody.byteLength, this.#options.bodyLimit)) {
      return this.refuse('BODY_TOO_LARGE', log, { bodyLength: rawBody.byteLength, bodyLimit: this.#options.bodyLimit })
    }
    const now = this.#options.clock()
    const verified = this.#verify({
      rawBody,
      signature: delivery.signature,
      timestamp: delivery.timestamp,
      toleranceSeconds: this.#options.toleranceSeconds,
      now
    })
    return verified instanceof Promise
      ? verified.then((result) => this.#verified(delivery, result, now, log))
      : this.#verified(delivery, verified, now, log)
  }

  /**
   * Answers a refusal and logs it: at `info` when the sender is wrong, at `warn`
   * for a 503 (it will retry), at `error` for a receiver set up wrong, whose
   * `message` says how to fix it. Logged through the refusal log, which writes the
   * first of each reason in full and counts the rest (core/refusal-log.ts).
   * `event` and `startedAt`, where known, go to the delivery's span.
   */
  refuse (code: RefusalCode, log: WebhookLogger, details: Record<string, unknown>, message?: string, event?: AnyEvent, startedAt?: number): ReceiveResult {
    const answer = this.#refusals[code]
    const fields = { reason: code, ...details }
    if (answer.status === 503) this.#refusalLog.refused(code, 'warn', log, fields, message ?? 'webhook refused for now')
    else if (answer.status >= 500) this.#refusalLog.refused(code, 'error', log, fields, message ?? 'webhook refused: the receiver cannot verify it')
    else this.#refusalLog.refused(code, 'info', log, fields, message ?? 'webhook rejected')
    this.#delivered(code, event, startedAt)
    return answer
  }

  /** Writes the counts of refusals not yet logged (on close). */
  flushRefusalLog (): void {
    this.#refusalLog.flush()
  }

  /** Every answer passes here once, refusals through `refuse`: the one place deliveries are counted. */
  #delivered (code: ReceiveCode, event: AnyEvent | undefined, startedAt: number | undefined, bodyDiffers = false): void {
    this.#stats.delivered(code)
    this.#telemetry?.delivered(code, event, startedAt, bodyDiffers)
  }

  /** The answer for a refusal, without a log line. */
  refusal (code: RefusalCode): ReceiveResult {
    return this.#refusals[code]
  }

  #verified (delivery: Delivery, verified: VerifyResult, now: number, log: WebhookLogger): ReceiveResult | Promise<ReceiveResult> {
    if (!verified.ok) {
      return this.refuse(verified.code, log, { skewSeconds: roundSkew(verified.skewSeconds), bodyLength: delivery.rawBody.byteLength }, undefined, undefined, now)
    }
    const parsed = parseEnvelope(delivery.rawBody)
    if (!parsed.ok) return this.refuse(parsed.code, log, { bodyLength: delivery.rawBody.byteLength }, undefined, undefined, now)
    const { event } = parsed
    if (this.#lifecycle.closing) return this.#refuseEvent('CLOSING', log, event, now)
    // An inbox that starts asynchronously is waited for until it has started; after
    // that, the check costs nothing.
    const starting = this.#lifecycle.starting
    if (starting !== undefined) return starting.then(() => this.#accept(event, now, delivery, verified.secretIndex, log))
    return this.#accept(event, now, delivery, verified.secretIndex, log)
  }

  #accept (event: AnyEvent, now: number, delivery: Delivery, secretIndex: number, log: WebhookLogger): ReceiveResult | Promise<ReceiveResult> {
    if (this.#lifecycle.startFailed) return this.#refuseEvent('INBOX_UNAVAILABLE', log, event, now)
    // close() may have begun while the inbox was starting.
    if (this.#lifecycle.closing) return this.#refuseEvent('CLOSING', log, event, now)
    let accepted: AcceptOutcome | Promise<AcceptOutcome>
    try {
      accepted = this.#inbox.accept(event, now, delivery.whenAnswered, delivery.waitUntil, delivery.rawBody)
    } catch (error) {
      return this.#inboxFailed(event, error, log, now)
    }
    // A synchronous inbox (the in-memory one) answers without a promise hop.
    if (typeof accepted === 'string') return this.#answer(accepted, event, secretIndex, log, now)
    return accepted.then(
      (outcome) => this.#answer(outcome, event, secretIndex, log, now),
      (error: unknown) => this.#inboxFailed(event, error, log, now)
    )
  }

  /** A refusal once the event is known: its id and type in the log line and the counts. */
  #refuseEvent (code: RefusalCode, log: WebhookLogger, event: AnyEvent, now: number): ReceiveResult {
    return this.refuse(code, log, { event: eventTag(event) }, undefined, event, now)
  }

  #inboxFailed (event: AnyEvent, error: unknown, log: WebhookLogger, now: number): ReceiveResult {
    log.error({ err: safeError(error), event: eventTag(event) }, 'the inbox failed to record the event')
    return this.#refuseEvent('INBOX_UNAVAILABLE', log, event, now)
  }

  #answer (outcome: AcceptOutcome, event: AnyEvent, secretIndex: number, log: WebhookLogger, now: number): ReceiveResult {
    if (outcome === 'accepted') {
      if (log.isLevelEnabled?.('debug') !== false) log.debug({ event: eventTag(event), secretIndex }, 'webhook accepted')
      this.#delivered('ACCEPTED', event, now)
      return ACCEPTED
    }
    if (outcome === 'duplicate') {
      log.info({ event: eventTag(event) }, 'duplicate webhook acknowledged, not dispatched again')
      this.#delivered('DUPLICATE', event, now)
      return DUPLICATE
    }
    if (outcome === 'duplicate-differs') {
      // Never the bodies themselves: only that they differ.
      log.warn({ event: eventTag(event) }, 'duplicate webhook acknowledged, not dispatched again, but its body differs from the one first recorded under this id')
      this.#stats.duplicateDiffers += 1
      this.#delivered('DUPLICATE', event, now, true)
      return DUPLICATE
    }
    return this.#refuseEvent(outcomeRefusal[outcome], log, event, now)
  }
}

function roundSkew (skewSeconds: number | undefined): number | undefined {
  return skewSeconds === undefined ? undefined : Math.round(skewSeconds)
}
