import type { Inbox } from './inbox.js'
import type { WebhooksOptions } from './options.js'
import { defaultLogger } from './pino-logger.js'
import { WebhookReceiver, type ReceiverPlatform } from './receiver.js'
import { loadOpenTelemetryApi } from './telemetry-node.js'
import { createNodeVerifier } from './verify-node.js'

const nodePlatform: ReceiverPlatform = {
  createVerifier: createNodeVerifier,
  defaultLogger: () => defaultLogger(),
  openTelemetryApi: loadOpenTelemetryApi
}

/** The receiver for Node.js: signatures checked synchronously with node:crypto, logs through pino. */
export class Webhooks<I extends Inbox = Inbox> extends WebhookReceiver<I> {
  constructor (options: WebhooksOptions<I>) {
    super(options, nodePlatform)
  }
}
