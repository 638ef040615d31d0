// Types only: the testing entry must load for users who do not have Fastify.
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { createDelivery, type CreateDeliveryOptions } from './delivery.js'

export interface InjectDeliveryOptions extends CreateDeliveryOptions {
  /** The webhook route. Default `/webhooks/sir`, the plugin's default. */
  path?: string
  /** Extra or replacing headers, to test a proxy that adds or alters some. */
  headers?: Record<string, string>
}

/** Signs an event and injects it into a Fastify app, without opening a socket. */
export async function injectDelivery (app: FastifyInstance, event: object | string, options: InjectDeliveryOptions): Promise<LightMyRequestResponse> {
  const { body, headers } = createDelivery(event, options)
  return app.inject({
    method: 'POST',
    url: options.path ?? '/webhooks/sir',
    headers: { ...headers, ...options.headers },
    payload: body
  })
}
