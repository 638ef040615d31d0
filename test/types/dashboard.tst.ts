// The dashboard as docs/dashboard.md mounts it: `authorize` gets the framework's
// own request, typed; the options are checked by the compiler as at registration.
import type { IncomingMessage } from 'node:http'
import Fastify, { type FastifyRequest } from 'fastify'
import { describe, expect, test } from 'tstyche'
import { Webhooks, type EventOutcome, type EventQuery, type Inbox } from 'sir-webhooks'
import dashboard, { dashboardHandler, type DashboardListener } from 'sir-webhooks/dashboard'

const webhooks = new Webhooks({ secret: 'whsec_example' })
const app = Fastify()

describe('the dashboard', () => {
  test("Fastify: authorize is given Fastify's request", () => {
    void app.register(dashboard, {
      webhooks,
      prefix: '/ops/webhooks',
      authorize: (request) => {
        expect(request).type.toBe<FastifyRequest>()
        return request.headers['x-role'] === 'ops'
      }
    })
  })

  test('node:http and Express: a listener with close(), authorize given the IncomingMessage', () => {
    const listener = dashboardHandler({ webhooks, prefix: '/ops', basicAuth: { username: 'ops', password: 'a long password' }, authorize: async (request) => {
      expect(request).type.toBe<IncomingMessage>()
      return true
    } })
    expect(listener).type.toBe<DashboardListener>()
    expect(listener.close).type.toBe<() => void>()
  })

  test('readOnly is a boolean, and a misspelt option does not compile', () => {
    expect(dashboardHandler).type.not.toBeCallableWith({ webhooks, basicAuth: { username: 'ops', password: 'a long password' }, readOnly: 'yes' })
    expect(dashboardHandler).type.not.toBeCallableWith({ webhooks, authorize: () => true, readonly: true })
  })

  test('Inbox.events is optional, and takes an EventQuery', () => {
    expect<Inbox['events']>().type.toBe<((query?: EventQuery) => Promise<EventOutcome[]>) | undefined>()
  })
})
