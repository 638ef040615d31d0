import type { Inbox } from './inbox.js'
import { consoleLogger } from './console-logger.js'
import type { WebhooksOptions } from './options.js'
import { WebhookReceiver, type ReceiverPlatform } from './receiver.js'
import { createWebVerifier } from './verify-web.js'

const webPlatform: ReceiverPlatform = {
  createVerifier: createWebVerifier,
  defaultLogger: () => consoleLogger()
}

/**
 * The receiver for runtimes without node: modules: signatures checked with Web
 * Crypto (`crypto.subtle`), logs as JSON lines on the console unless a logger
 * is given. Same options, handlers and answers as the Node receiver. Without
 * node: modules `@opentelemetry/api` is not looked up: pass `telemetry: {
 * meterProvider, tracerProvider }` to send metrics and spans.
 */
export class Webhooks<I extends Inbox = Inbox> extends WebhookReceiver<I> {
  constructor (options: WebhooksOptions<I>) {
    super(options, webPlatform)
  }
}
