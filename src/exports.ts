// Everything the package root offers on every runtime: the documented API only,
// since whatever is exported here has to stay stable. The Node root (index.ts)
// and the Web root (index-web.ts) add their own Webhooks class and verifiers.
export { SIGNATURE_PREFIX, DEFAULT_TOLERANCE_SECONDS } from './core/signature-checks.js'
export type { VerifyInput, VerifyResult, SignInput, Signature, Secret, HeaderInput } from './core/signature-checks.js'
export { verifyAsync, signAsync } from './core/verify-web.js'
export { WebhookReceiver } from './core/receiver.js'
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
export type { HandlerOptions } from './core/registry.js'
export { RetryLater } from './core/flow/retry-later.js'
export type { HandlerLimits, RateLimit } from './core/flow/limits.js'
export type { FlowStore, PauseState } from './core/flow/store.js'
export type { FlowStats } from './core/flow/snapshot.js'
export type { OrderingOptions } from './core/ordering/options.js'
export type { DeadLetterOrdering, HandlerOrdering, OrderingStats } from './core/ordering/engine.js'
export type { BlockedKey, KeyWait, OrderedEventRef, OrderingKeyCounts, OrderingStore, TakeAnswer } from './core/ordering/store.js'
export type { OrderingControl } from './core/ordering/setup.js'
// For writing an inbox of your own (docs/architecture.md).
export type { AcceptOutcome, HandlerRun, Inbox, InboxContext, InboxHealth, InboxRuntime, PurgeOptions, PurgeResult, EventQuery, WaitingRuns } from './core/inbox.js'
export type { HandlerStats, WebhookStats } from './core/stats.js'
export type { WebhookHealth } from './core/health.js'
export type { TelemetryOptions, MeterProviderLike, TracerProviderLike } from './core/telemetry-types.js'
export type { AttemptRecord, DeadLetterQuery, EventOutcome, OutcomeState } from './core/outcome.js'
export type { ReplayFilter, RequeueOptions } from './core/replay-filter.js'
export type { ReplayOptions, ReplayRun } from './core/replay.js'
export type { WebhooksOptions, RetryOptions, RetryLaterOptions, DedupeOptions, ResolvedOptions } from './core/options.js'
export type { Delivery, ReceiveResult, ReceiveCode } from './core/delivery.js'
export type { WebhookLogger } from './core/logger.js'
