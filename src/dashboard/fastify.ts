import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { Dashboard } from './app.js'
import { checkOptions, type DashboardOptions } from './options.js'
import { dashboardHeaders, formFrom, pathBelow } from './request-headers.js'

export type FastifyDashboardOptions = DashboardOptions<FastifyRequest>

// Fastify's own register options arrive in the same object as the dashboard's.
const REGISTER_OPTIONS = ['logLevel', 'logSerializers'] as const
const FORM_LIMIT = 16_384

/**
 * `app.register(dashboard, { webhooks, prefix: '/ops/webhooks', authorize })`.
 * Not wrapped in fastify-plugin on purpose: the routes and the form parser stay
 * in their own encapsulated context, under `prefix`, seen by no other route.
 */
const dashboard: FastifyPluginAsync<FastifyDashboardOptions> = async function sirWebhooksDashboard (instance, options) {
  const checked = checkOptions<FastifyRequest>(options, REGISTER_OPTIONS)
  const core = new Dashboard(checked, instance.prefix)
  instance.addHook('onClose', async () => { core.close() })
  // Every body reaches the handler as text, so that the access check, not a
  // content-type parser, answers first; only a form is read as one.
  instance.removeAllContentTypeParsers()
  instance.addContentTypeParser('*', { parseAs: 'string', bodyLimit: FORM_LIMIT }, (_request, body, done) => { done(null, body) })
  const handler = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const below = pathBelow(request.url, instance.prefix) ?? { path: '/', query: new URLSearchParams() }
    const form = formFrom(request.headers['content-type'], request.body)
    const answer = await core.handle({
      method: request.method,
      path: below.path,
      query: below.query,
      headers: dashboardHeaders(request.headers),
      ...(form === undefined ? {} : { form }),
      raw: request
    })
    await reply.code(answer.status).headers(answer.headers).send(answer.body)
  }
  instance.route({ method: ['GET', 'POST'], url: '/', handler })
  instance.route({ method: ['GET', 'POST'], url: '/*', handler })
}

export default dashboard
