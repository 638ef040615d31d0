import Fastify, { type FastifyBaseLogger } from 'fastify'
import sirWebhooks from '../../src/fastify/plugin.js'
import type { AdapterHarness } from './harness.js'

export const fastifyHarness: AdapterHarness = {
  name: 'fastify',
  async start (webhooks, { path }) {
    // The app logs through the receiver's logger, as an app passing its own pino
    // instance would, so scenarios can read what request.log wrote.
    const app = Fastify({ loggerInstance: webhooks.logger as FastifyBaseLogger })
    await app.register(sirWebhooks, { webhooks, path })
    const address = await app.listen({ port: 0, host: '127.0.0.1' })
    let closing: Promise<void> | undefined
    return {
      url: address + path,
      close: () => (closing ??= app.close())
    }
  }
}
