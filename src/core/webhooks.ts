import type { WebhooksOptions } from './options.js'
import { defaultLogger } from './pino-logger.js'
import { WebhookReceiver, type ReceiverPlatform } from './receiver.js'
import { createNodeVerifier } from './verify.js'

const nodePlatform: ReceiverPlatform = {
  createVerifier: createNodeVerifier,
  defaultLogger: () => defaultLogger()
}

/** The receiver for Node.js: signatures checked synchronously with node:crypto, logs through pino. */
export class Webhooks extends WebhookReceiver {
  constructor (options: WebhooksOptions) {
    super(options, nodePlatform)
  }
}
