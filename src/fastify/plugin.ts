import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { assertReceiver, checkAdapterOptions } from '../adapter/receiver.js'
import { resolvePath, routePathOf } from '../adapter/route.js'
import { deliveryFromNodeHeaders, type ReceiveResult } from '../core/delivery.js'
import { WebhookOptionsError } from '../core/errors.js'
import type { WebhooksOptions } from '../core/options.js'
import { Webhooks } from '../core/webhooks-node.js'
import { AnswerGate } from './answer-gate.js'

export { DEFAULT_WEBHOOK_PATH as DEFAULT_PATH } from '../adapter/route.js'

export interface SirWebhooksPluginOptions {
  /** A receiver you built (and registered handlers on). Give this or `secret`. */
  webhooks?: Webhooks
  /** Builds a receiver with these options; the app's logger is used unless `logger` is set. */
  secret?: WebhooksOptions['secret']
  /** Other receiver options, when the plugin builds the receiver from `secret`. */
  receiver?: Omit<WebhooksOptions, 'secret'>
  /** The route, below `prefix`. Default `/webhooks/sir`. */
  path?: string
  /** Mounts the route below this prefix, as Fastify's own `register` option does. */
  prefix?: string
  /**
   * The name under which the app gets the receiver. Default `sirWebhooks`; give
   * each registration its own (`sirWebhooksSandbox`) to mount several receivers,
   * a sandbox and a live endpoint with their own secrets, say.
   */
  decorator?: string
}

const DEFAULT_DECORATOR = 'sirWebhooks'
// Fastify's own register options arrive in the same object as the plugin's.
const KNOWN_OPTIONS = ['webhooks', 'secret', 'receiver', 'path', 'prefix', 'decorator', 'logLevel', 'logSerializers'] as const

declare module 'fastify' {
  interface FastifyInstance {
    sirWebhooks: Webhooks
  }
}

function receiverFrom (fastify: FastifyInstance, options: SirWebhooksPluginOptions): Webhooks {
  if (options.webhooks !== undefined && options.secret !== undefined) {
    throw new WebhookOptionsError('give either "webhooks" or "secret" to the Fastify plugin, not both')
  }
  if (options.webhooks !== undefined) {
    assertReceiver(options.webhooks, 'the Fastify plugin')
    return options.webhooks
  }
  if (options.secret === undefined) {
    throw new WebhookOptionsError('the Fastify plugin needs "webhooks" (a Webhooks instance) or "secret"')
  }
  return new Webhooks({ logger: fastify.log, ...options.receiver, secret: options.secret })
}

/**
 * The route lives in its own encapsulated context so its buffer parser is seen
 * by no other route: the app's JSON routes, before or after, keep parsed bodies.
 */
function routePlugin (webhooks: Webhooks, path: string): FastifyPluginAsync {
  return async function sirWebhooksRoute (instance) {
    instance.removeAllContentTypeParsers()
    // One catch-all buffer parser: the receiver, not Fastify, decides which media
    // types it takes, so every adapter answers 415 the same way. `parseAs: 'buffer'`
    // keeps the exact bytes; decoding to a string would alter invalid UTF-8.
    const keepBytes = (_request: FastifyRequest, body: Buffer | string, done: (error: Error | null, body?: unknown) => void): void => {
      done(null, body)
    }
    const parserOptions = { parseAs: 'buffer', bodyLimit: webhooks.options.bodyLimit } as const
    // `application/json` by name as well: Fastify finds an exact type in its cache,
    // while the catch-all alone made it parse the Content-Type header on every request.
    instance.addContentTypeParser('application/json', parserOptions, keepBytes)
    instance.addContentTypeParser('*', parserOptions, keepBytes)
    // The route's full URL (prefix included), read once: request.routeOptions
    // builds an object per read. A path of '/' under a prefix is the prefix with
    // and without its trailing slash, as Fastify's prefixTrailingSlash serves it.
    const routeUrls = new Set<string>()
    instance.addHook('onRoute', (route) => {
      routeUrls.add(route.url)
      if (path === '/' && !route.url.endsWith('/')) routeUrls.add(`${route.url}/`)
    })
    instance.post(path, {
      // Opts out of fastify-raw-body's global hook, which would read and decode the
      // body a second time for nothing.
      config: { rawBody: false },
      bodyLimit: webhooks.options.bodyLimit,
      errorHandler (error, request, reply) {
        // Fastify's own refusals (body too large, aborted body) answer in the
        // receiver's format; anything else is a bug and goes to the app's handler.
        const refusal = fastifyRefusals[(error as { code?: string }).code ?? '']
        if (refusal === undefined) throw error
        return send(reply, webhooks.refuse(refusal, request.log, { bodyLimit: webhooks.options.bodyLimit }))
      }
    }, function sirWebhooksHandler (request: FastifyRequest, reply: FastifyReply) {
      // Fastify's router decodes the path (`/webhooks/%73ir` finds this route) and
      // drops a fragment; Express routes on the path as sent. One rule for every
      // adapter: the path as sent must be the route's (adapter/route.ts).
      const sentPath = routePathOf(request.raw.url)
      if (sentPath === undefined || !routeUrls.has(sentPath)) {
        reply.callNotFound()
        return undefined
      }
      const rawBody = Buffer.isBuffer(request.body) ? request.body : EMPTY
      const delivery = deliveryFromNodeHeaders(request.headers, rawBody, request.raw.rawHeaders)
      // An app's async onSend hook (compression, say) can hold the write past the
      // next macrotask: handlers wait until Fastify has written the answer.
      const gate = new AnswerGate(reply.raw)
      delivery.whenAnswered = gate.whenAnswered
      // Not an async handler: with the in-memory inbox the answer is known at once
      // and sent in this tick, without a promise for Fastify to wait on.
      const answer = webhooks.decide(delivery, request.log)
      if (answer instanceof Promise) return answer.then((decided) => sendThrough(gate, reply, decided))
      sendThrough(gate, reply, answer)
      return undefined
    })
  }
}

function decoratorName (fastify: FastifyInstance, given: unknown): string {
  if (given !== undefined && (typeof given !== 'string' || !/^[A-Za-z_$][\w$]*$/.test(given))) {
    throw new WebhookOptionsError(`"decorator" must be a JavaScript identifier such as "sirWebhooksSandbox", got ${JSON.stringify(given)}`)
  }
  const name = given ?? DEFAULT_DECORATOR
  if (fastify.hasDecorator(name)) {
    throw new WebhookOptionsError(`the app already has "${name}": to register the plugin again (a second endpoint, another secret), ` +
      'give this registration its own name, e.g. { decorator: \'sirWebhooksSandbox\' }, and reach its receiver as app.sirWebhooksSandbox')
  }
  return name
}

const EMPTY = Buffer.alloc(0)

// Refusals Fastify makes before the route runs, answered as the receiver would.
// A media type Fastify cannot even parse (`application/ json`, a list) never
// reaches the catch-all parser.
const fastifyRefusals: Partial<Record<string, 'BODY_TOO_LARGE' | 'UNSUPPORTED_MEDIA_TYPE'>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE'
}

function send (reply: FastifyReply, answer: ReceiveResult): FastifyReply {
  return reply.code(answer.status).headers(answer.headers).send(answer.body)
}

function sendThrough (gate: AnswerGate, reply: FastifyReply, answer: ReceiveResult): FastifyReply {
  send(reply, answer)
  gate.sent()
  return reply
}

export const NO_REQUEST_TIMEOUT_MESSAGE =
  'sir-webhooks: this Fastify app has no request timeout (Fastify\'s requestTimeout and connectionTimeout default to off), so a client that ' +
  'sends its body slowly, or nothing after its headers, holds a socket and its memory for as long as it likes, before any signature is checked. ' +
  'Set one where the app is made: Fastify({ requestTimeout: 30_000, connectionTimeout: 60_000 }), and limit connections in front ' +
  '(a proxy\'s timeouts and connection limits). See docs/deployment.md, "Slow clients". (Logged once.)'

// Apps already warned about: several registrations (two endpoints) warn once.
const warnedServers = new WeakSet<object>()

/**
 * At `ready`, says once when the app's server has no request timeout: Fastify
 * turns Node's default (300 s) off, and its plugin cannot set one after the
 * server was made. Read from the server itself, so a timeout set through
 * `serverFactory` or on `app.server` counts.
 */
function warnWithoutRequestTimeout (fastify: FastifyInstance): void {
  const server = fastify.server as { requestTimeout?: number } | undefined
  if (server === undefined || warnedServers.has(server)) return
  if (typeof server.requestTimeout === 'number' && server.requestTimeout > 0) return
  warnedServers.add(server)
  fastify.log.warn({ reason: 'NO_REQUEST_TIMEOUT', requestTimeout: server.requestTimeout ?? 0, connectionTimeout: fastify.initialConfig.connectionTimeout ?? 0 }, NO_REQUEST_TIMEOUT_MESSAGE)
}

const plugin: FastifyPluginAsync<SirWebhooksPluginOptions> = async function sirWebhooks (fastify, options) {
  checkAdapterOptions(options, KNOWN_OPTIONS, 'the Fastify plugin')
  const path = resolvePath(options.path)
  const decorator = decoratorName(fastify, options.decorator)
  const webhooks = receiverFrom(fastify, options)
  fastify.decorate(decorator, webhooks)
  fastify.addHook('onClose', async () => { await webhooks.close() })
  fastify.addHook('onReady', async () => { warnWithoutRequestTimeout(fastify) })
  // Before the server listens: the inbox's modules loaded (not its store reached).
  await webhooks.loaded()
  // fastify-plugin drops Fastify's own `prefix` handling for this outer plugin,
  // so it is passed on to the inner, encapsulated one.
  // So are the route's log options: Fastify applies them per registration.
  const { prefix, logLevel, logSerializers } = options as SirWebhooksPluginOptions & { logLevel?: string, logSerializers?: Record<string, unknown> }
  await fastify.register(routePlugin(webhooks, path), {
    ...(prefix === undefined ? {} : { prefix }),
    ...(logLevel === undefined ? {} : { logLevel }),
    ...(logSerializers === undefined ? {} : { logSerializers })
  } as { prefix?: string })
}

export const sirWebhooks = fp(plugin, { fastify: '5.x', name: 'sir-webhooks' })
export default sirWebhooks
