// Type tests, run by tstyche (`npx tstyche`, and by test/types.test.ts in `npm test`).
// Everything is imported by package name, so these check the built declarations
// as a user's project sees them (npm run build first).
import type { IncomingMessage, ServerResponse } from 'node:http'
import Fastify from 'fastify'
import { describe, expect, test } from 'tstyche'
import {
  RetryLater,
  Webhooks,
  verify,
  type AnyEvent,
  type DeadLetter,
  type ReplayRun,
  type HandlerContext,
  type EventMap,
  type KnownEvent,
  type UndocumentedData,
  type WebhookEvent
} from 'sir-webhooks'
import sirWebhooks from 'sir-webhooks/fastify'
import { captureRawBody, expressMiddleware } from 'sir-webhooks/express'
import { fetchHandler } from 'sir-webhooks/fetch'
import { nodeListener } from 'sir-webhooks/node'
import { createEvent } from 'sir-webhooks/testing'
import { sqliteInbox, type SqliteInbox } from 'sir-webhooks/sqlite'
import { bullmqInbox, type BullmqInbox } from 'sir-webhooks/bullmq'

const webhooks = new Webhooks({ secret: 'whsec_dev' })

describe('on(type, handler)', () => {
  test('one type narrows the event: its literal type and its documented data', () => {
    webhooks.on('action.completed', (event, context) => {
      expect(event.type).type.toBe<'action.completed'>()
      expect(event.data.actionId).type.toBe<string>()
      expect(event.data.tokensDistributed).type.toBe<number>()
      expect(context).type.toBeAssignableTo<HandlerContext>()
      expect(context.attempt).type.toBe<number>()
      expect(context.signal).type.toBe<AbortSignal>()
    })
  })

  test('an array of types gives the union of their events', () => {
    webhooks.on(['campaign.paused', 'campaign.completed'], (event) => {
      expect(event.type).type.toBe<'campaign.paused' | 'campaign.completed'>()
      expect(event.data).type.toBe<UndocumentedData>()
      expect(event.data.campaignId).type.toBe<unknown>()
    })
  })

  test('a misspelt type does not compile, alone or in an array', () => {
    expect(webhooks.on('action.complete', () => {})).type.toRaiseError('"action.complete"')
    expect(webhooks.on(['campaign.paused', 'campaign.pause'], () => {})).type.toRaiseError()
  })

  test('the documented data shape is enforced', () => {
    webhooks.on('action.completed', (event) => {
      expect<string>().type.not.toBeAssignableFrom(event.data.tokensDistributed)
    })
    expect(webhooks.on('action.completed', (event: WebhookEvent<'action.completed', { actionId: number }>) => event)).type.toRaiseError()
  })

  test('a { name } option names the handler; other options do not compile', () => {
    expect(webhooks.on('action.completed', () => {}, { name: 'creditPartner' })).type.toBe<Webhooks>()
    expect(webhooks.onAny(() => {}, { name: 'audit' })).type.toBe<Webhooks>()
    expect(webhooks.on('action.completed', () => {}, { label: 'creditPartner' })).type.toRaiseError()
  })

  test('flow control: concurrency and rate per handler, pause and resume return promises, RetryLater is exported', () => {
    expect(webhooks.on('action.completed', () => {}, { name: 'creditPartner', concurrency: 2, rate: { perSecond: 20, burst: 5 } })).type.toBe<Webhooks>()
    expect(webhooks.on('action.completed', () => {}, { rate: { perMinute: 20 } })).type.toRaiseError()
    expect(webhooks.on('action.completed', () => {}, { concurrency: '2' })).type.toRaiseError()
    expect(webhooks.pause()).type.toBe<Promise<void>>()
    expect(webhooks.resume('creditPartner')).type.toBe<Promise<void>>()
    expect(new RetryLater({ afterMs: 2000 })).type.toBeAssignableTo<Error>()
    expect(webhooks.health().status).type.toBe<'ok' | 'degraded' | 'paused' | 'closing'>()
    expect(webhooks.stats().flow.oldestWaitingMs).type.toBe<number | undefined>()
  })

  test('replay: a count without dryRun, each run\'s outcome with it; the filter\'s state is dead or done', () => {
    expect(webhooks.replay({ state: 'dead', type: 'action.completed', since: new Date() })).type.toBe<Promise<number>>()
    expect(webhooks.replay({ state: 'done', handler: 'creditPartner' }, { dryRun: true, limit: 10 })).type.toBe<Promise<ReplayRun[]>>()
    expect(webhooks.replay({ state: 'pending' })).type.toRaiseError()
    expect(webhooks.on('action.completed', (_event, context) => context.replay?.dryRun)).type.toBe<Webhooks>()
  })

  test('returns the receiver, so registrations chain', () => {
    expect(webhooks.on('action.failed', () => {})).type.toBe<Webhooks>()
    expect(webhooks.onAny(() => {}).onError(() => {}).onDeadLetter(() => {})).type.toBe<Webhooks>()
  })
})

describe('onAny, onError, onDeadLetter', () => {
  test('onAny gets any event, documented or not', () => {
    webhooks.onAny((event) => {
      expect(event).type.toBe<AnyEvent>()
      expect(event.type).type.toBe<string>()
      expect(event.id).type.toBe<string>()
      expect(event.createdAt).type.toBe<string>()
      expect(event.data).type.toBeAssignableTo<UndocumentedData>()
    })
  })

  test('onError gets the error, the event and which handler failed', () => {
    webhooks.onError((error, event, info) => {
      expect(error).type.toBe<unknown>()
      expect(event).type.toBe<AnyEvent>()
      expect(info.handler).type.toBe<string>()
      expect(info.attempts).type.toBe<number>()
    })
  })

  test('onDeadLetter gets a dead letter with its reason', () => {
    webhooks.onDeadLetter((deadLetter) => {
      expect(deadLetter).type.toBe<DeadLetter>()
      expect<'handler_failed' | 'shutdown'>().type.toBeAssignableFrom(deadLetter.reason)
    })
  })
})

describe('off', () => {
  const credit = async (event: KnownEvent): Promise<void> => { void event }
  const audit = async (event: AnyEvent): Promise<void> => { void event }
  test('off(type, handler) and off(handler) both compile and chain', () => {
    expect(webhooks.off('action.completed', credit)).type.toBe<Webhooks>()
    expect(webhooks.off(['campaign.paused', 'campaign.completed'], credit)).type.toBe<Webhooks>()
    expect(webhooks.off(audit)).type.toBe<Webhooks>()
    const typed = (event: EventMap['action.completed']): void => { void event.data.tokensDistributed }
    webhooks.on('action.completed', typed)
    expect(webhooks.off(typed)).type.toBe<Webhooks>()
    expect(webhooks.off((error: unknown) => { void error })).type.toBe<Webhooks>()
  })

  test('off with a misspelt type or a non-function does not compile', () => {
    expect(webhooks.off('action.complete', credit)).type.toRaiseError()
    expect(webhooks.off('action.completed')).type.toRaiseError()
    expect(webhooks.off(42)).type.toRaiseError()
  })
})

describe('the envelope', () => {
  test('createdAt and data are required, as the platform documents them', () => {
    expect<WebhookEvent['createdAt']>().type.toBe<string>()
    expect<WebhookEvent>().type.not.toBeAssignableFrom({ id: 'evt_1', type: 'action.completed', data: {} })
    expect<WebhookEvent>().type.not.toBeAssignableFrom({ id: 'evt_1', type: 'action.completed', createdAt: '2026-05-10T09:12:00Z' })
    expect<WebhookEvent>().type.toBeAssignableFrom({ id: 'evt_1', type: 'reward.new', createdAt: '2026-05-10T09:12:00Z', data: {}, version: 3 })
  })

  test('createEvent builds the typed event of its type', () => {
    const event = createEvent('action.completed', { tokensDistributed: 5 })
    expect(event.type).type.toBe<'action.completed'>()
    expect(event.data.tokensDistributed).type.toBe<number>()
    expect(createEvent('action.complete')).type.toRaiseError()
    expect(createEvent('action.completed', { tokensDistributed: 'five' })).type.toRaiseError()
  })
})

describe('receiver options', () => {
  test('misspelt or mistyped options do not compile', () => {
    expect(new Webhooks({ secret: 'whsec_dev', toleranceSecs: 5 })).type.toRaiseError()
    expect(new Webhooks({ secret: 42 })).type.toRaiseError()
    expect(new Webhooks({ secret: ['whsec_new', 'whsec_old'], dedupe: { maxEntries: 10 }, retry: { attempts: 3 } })).type.toBe<Webhooks>()
  })

  test('verify() takes Node header values as they come', () => {
    const check = (req: IncomingMessage, rawBody: Buffer): number => {
      const result = verify({ secret: 'whsec_dev', rawBody, signature: req.headers['x-sir-signature'], timestamp: req.headers['x-sir-timestamp'] })
      return result.ok ? result.secretIndex : result.status
    }
    expect(check).type.toBe<(req: IncomingMessage, rawBody: Buffer) => number>()
  })
})

describe('adapter options', () => {
  test('the Fastify plugin takes a receiver or a secret, a path and a prefix, and decorates the app', async () => {
    const app = Fastify()
    await app.register(sirWebhooks, { webhooks, prefix: '/partners', path: '/sir' })
    await app.register(sirWebhooks, { secret: 'whsec_dev', receiver: { concurrency: 2 }, decorator: 'sirWebhooksSandbox' })
    expect(app.sirWebhooks).type.toBe<Webhooks>()
    expect(app.register(sirWebhooks, { webhooks, path: 7 })).type.toRaiseError()
    expect(app.register(sirWebhooks, { secret: 'whsec_dev', receiver: { secret: 'whsec_other' } })).type.toRaiseError()
  })

  test('nodeListener: a path and a logger; a (req, res, next?) listener', () => {
    const listener = nodeListener(webhooks, { path: '/webhooks/sir', logger: webhooks.logger })
    expect(listener).type.toBeAssignableTo<(request: IncomingMessage, response: ServerResponse) => void>()
    expect(nodeListener(webhooks, { path: 1 })).type.toRaiseError()
    expect(nodeListener(webhooks, { prefix: '/x' })).type.toRaiseError()
  })

  test('expressMiddleware: a path and a logger; captureRawBody fits express.json({ verify })', () => {
    expect(expressMiddleware(webhooks, { path: '/webhooks/sir', logger: webhooks.logger })).type.toBeAssignableTo<(request: IncomingMessage, response: ServerResponse, next: (error?: unknown) => void) => void>()
    expect(expressMiddleware(webhooks, { prefix: '/webhooks' })).type.toRaiseError()
    expect(captureRawBody).type.toBeAssignableTo<(request: IncomingMessage, response: ServerResponse, body: Buffer, encoding: string) => void>()
  })

  test('fetchHandler: a path; a Request => Promise<Response> handler that also takes a Worker\'s (env, ctx)', () => {
    expect(fetchHandler(webhooks)).type.toBeAssignableTo<(request: Request) => Promise<Response>>()
    expect(fetchHandler(webhooks, { path: '/webhooks/sir' })).type.toBeAssignableTo<(request: Request) => Promise<Response>>()
    expect(fetchHandler(webhooks)).type.toBeCallableWith(new Request('http://x/'), {}, { waitUntil (_promise: Promise<unknown>) {} })
    expect(fetchHandler(webhooks)).type.toBeCallableWith(new Request('http://x/'), { params: Promise.resolve({}) })
    expect(fetchHandler(webhooks, { waitUntil (_promise: Promise<unknown>) {} })).type.toBeAssignableTo<(request: Request) => Promise<Response>>()
    expect(fetchHandler(webhooks, { path: true })).type.toRaiseError()
  })
})

describe('inbox generics', () => {
  test('a durable inbox keeps its own type on webhooks.inbox, with its queries', () => {
    const durable = new Webhooks({ secret: 'whsec_dev', inbox: sqliteInbox({ path: ':memory:' }) })
    expect(durable.inbox).type.toBe<SqliteInbox>()
    expect(durable.inbox.deadLetters()).type.toBeAssignableTo<Promise<unknown[]>>()
    expect(durable.inbox.redrive('evt_1')).type.toBe<Promise<boolean>>()

    const shared = new Webhooks({ secret: 'whsec_dev', inbox: bullmqInbox({ connection: { host: '127.0.0.1', port: 6379 } }) })
    expect(shared.inbox).type.toBe<BullmqInbox>()
    expect(shared.inbox.outcome('evt_1')).type.toBeAssignableTo<Promise<unknown>>()
  })

  test('the default inbox has no durable queries', () => {
    expect(webhooks.inbox.deadLetters()).type.toRaiseError()
  })

  test('inbox options are checked', () => {
    expect(sqliteInbox({ path: 1 })).type.toRaiseError()
    expect(sqliteInbox({})).type.toRaiseError()
    expect(bullmqInbox({ queueName: 'q' })).type.toRaiseError()
  })
})
