// Everything the package root offers on every runtime. The Node root (index.ts)
// and the Web root (web/index.ts) add their own Webhooks class and verifiers.
export { SIGNATURE_PREFIX, DEFAULT_TOLERANCE_SECONDS } from './core/signature-checks.js'
export type { VerifyInput, VerifyResult, SignInput, Signature, Secret, HeaderInput } from './core/signature-checks.js'
export { verifyAsync, signAsync } from './core/verify-web.js'
export { WebhookReceiver } from './core/receiver.js'
export type { ReceiverPlatform } from './core/receiver.js'
export { WebhookError, WebhookOptionsError, refusalStatus } from './core/errors.js'
export type { RefusalCode, VerificationErrorCode } from './core/errors.js'
export { eventNames } from './core/events.js'
export type {
  AnyEvent,
  ActionCompletedData,
  EventDataMap,
  EventMap,
  EventName,
  KnownEvent,
  UndocumentedData,
  WebhookEvent
} from './core/events.js'
export type {
  AnyEventHandler,
  DeadLetter,
  DeadLetterHandler,
  ErrorHandler,
  EventHandler,
  FailureInfo,
  HandlerContext,
  RegisteredHandler
} from './core/handlers.js'
export type { AcceptOutcome, HandlerRun, Inbox, InboxHealth, InboxRuntime, PurgeOptions, PurgeResult } from './core/inbox.js'
export type { WebhookStats } from './core/stats.js'
export type { WebhookHealth } from './core/health.js'
export type { TelemetryOptions, MeterProviderLike, TracerProviderLike } from './core/telemetry-types.js'
export type { DeadLetterQuery, EventOutcome, OutcomeState } from './core/outcome.js'
export { MemoryInbox } from './core/memory-inbox.js'
export { backoffDelay } from './core/backoff.js'
export { defaults } from './core/options.js'
export type { WebhooksOptions, RetryOptions, DedupeOptions, ResolvedOptions } from './core/options.js'
export { deliveryFromNodeHeaders, isJsonContentType, isEncoded } from './core/receive.js'
export type { Delivery, ReceiveResult, ReceiveCode } from './core/receive.js'
export type { WebhookLogger } from './core/logger.js'
