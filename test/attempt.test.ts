import { test } from 'tap'
import { keyedHandlers, runAttempt } from '../src/core/attempt.js'
import type { RegisteredHandler } from '../src/core/handlers.js'
import type { InboxRuntime } from '../src/core/inbox.js'
import { captureLogs } from './helpers/logs.js'

function runtimeWith (handlers: RegisteredHandler[], logger = captureLogs().logger): InboxRuntime {
  return {
    options: {} as InboxRuntime['options'],
    logger,
    signal: new AbortController().signal,
    hasHandlers: handlers.length > 0,
    handlersFor: () => handlers,
    runHandler: (run) => run.handler.fn(run.event, {} as never),
    handlerSucceeded: () => {},
    handlerRetrying: () => {},
    handlerFailed: async () => {},
    deadLetter: async () => {}
  }
}

const event = { id: 'evt_1', type: 'action.completed', createdAt: '2026-05-10T09:12:00Z', data: {} }

test('durable inboxes key handlers by name, numbering repeats', async (t) => {
  const named = (name: string): RegisteredHandler => ({ name, fn: () => {} })
  t.same(keyedHandlers([named('credit'), named('anonymous'), named('anonymous'), named('credit')]).map(({ key }) => key), ['credit', 'anonymous', 'anonymous#2', 'credit#2'])
})

test('handlers that already succeeded are skipped on a later attempt', async (t) => {
  const calls: string[] = []
  const handlers: RegisteredHandler[] = [
    { name: 'credit', fn: () => { calls.push('credit') } },
    { name: 'notify', fn: () => { calls.push('notify'); throw new Error('mail down') } }
  ]
  const result = await runAttempt(runtimeWith(handlers), event, Date.now(), 2, ['credit'])
  t.same(calls, ['notify'])
  t.same(result.succeeded, ['credit'])
  t.match(result.failures, [{ key: 'notify', error: { message: 'mail down' } }])
})
