// Issue 20, item 14: a body fragment never reaches the logs, even through an
// error's fields. A marker string rides in the body and in every field of the
// errors the memory inbox's failure paths log; it must be in no log line, while
// the lines themselves (and the errors' messages) are there.
import { test } from 'tap'
import { Webhooks, type AcceptOutcome, type Delivery, type Inbox, type InboxRuntime } from '../src/index.js'
import { MemoryInbox } from '../src/core/memory-inbox.js'
import { safeError } from '../src/core/safe-error.js'
import { captureLogs } from './helpers/logs.js'
import { SECRET, actionCompleted, eventually, signedRequest } from './helpers/deliveries.js'

const MARKER = 'MARKER_7f3a_body_fragment'

/** An error as a driver would make it: a plain message, the data in its other fields. */
function echoingError (message: string): Error {
  const error = new Error(message) as Error & Record<string, unknown>
  error.code = '22P02'
  error.where = `JSON data, line 1: {"data":{"note":"${MARKER}`
  error.detail = `Token "${MARKER}" is invalid.`
  error.hint = MARKER
  error.internalQuery = `SELECT '${MARKER}'`
  error.query = `INSERT INTO events VALUES ('${MARKER}')`
  error.parameters = [MARKER]
  error.response = { data: MARKER }
  error.command = { name: 'set', args: ['sir:seen', MARKER] }
  error.cause = Object.assign(new Error('inner'), { detail: MARKER })
  return error
}

function delivery (id?: string): Delivery {
  const request = signedRequest(actionCompleted({ ...(id === undefined ? {} : { id }), data: { actionId: 'act_1', note: MARKER } }))
  return { contentType: 'application/json', signature: request.headers['x-sir-signature'], timestamp: request.headers['x-sir-timestamp'], rawBody: request.body }
}

/** The memory inbox, told to fail its next accept one way or another. */
class FailingInbox implements Inbox {
  mode: 'throw' | 'reject' | 'log' | undefined
  readonly #inner = new MemoryInbox()
  #runtime: InboxRuntime | undefined

  start (runtime: InboxRuntime): void {
    this.#runtime = runtime
    this.#inner.start(runtime)
  }

  accept (...args: Parameters<MemoryInbox['accept']>): AcceptOutcome | Promise<AcceptOutcome> {
    const mode = this.mode
    this.mode = undefined
    if (mode === 'throw') throw echoingError('the insert failed')
    if (mode === 'reject') return Promise.reject(echoingError('the batch failed'))
    // A store logging its own failure through the runtime's logger, as the durable inboxes do.
    if (mode === 'log') this.#runtime?.logger.warn({ err: echoingError('a write was retried') }, 'store warning')
    return this.#inner.accept(...args)
  }

  async close (graceMs: number): Promise<void> {
    await this.#inner.close(graceMs)
  }
}

test('a marker in the body and in error fields reaches no log line through the memory inbox\'s failure paths', async (t) => {
  const logs = captureLogs()
  const inbox = new FailingInbox()
  const webhooks = new Webhooks({ secret: SECRET, logger: logs.logger, inbox, retry: { attempts: 2, minDelayMs: 1, maxDelayMs: 2 } })
  const deadLetters: string[] = []
  webhooks.on('action.completed', function payout () { throw echoingError('payout refused') })
  webhooks.onError(() => { throw echoingError('the alerting call failed') })
  webhooks.onDeadLetter((entry) => {
    deadLetters.push(entry.event.id)
    throw echoingError('the dead-letter table is down')
  })

  inbox.mode = 'throw'
  t.equal((await webhooks.receive(delivery())).code, 'INBOX_UNAVAILABLE')
  inbox.mode = 'reject'
  t.equal((await webhooks.receive(delivery())).code, 'INBOX_UNAVAILABLE')
  inbox.mode = 'log'
  t.equal((await webhooks.receive(delivery('evt_marker_dead'))).code, 'ACCEPTED')
  await eventually(() => deadLetters.length === 1, 5000, 'the dead letter')
  await webhooks.close()

  const entries = logs.entries()
  const messages = entries.map((entry): [unknown, string | undefined] => [entry.msg, (entry.err as { message?: string } | undefined)?.message])
  for (const [msg, err] of [
    ['the inbox failed to record the event', 'the insert failed'],
    ['the inbox failed to record the event', 'the batch failed'],
    ['store warning', 'a write was retried'],
    ['handler failed; will retry', 'payout refused'],
    ['event dead-lettered: a handler failed for good', 'payout refused'],
    ['an onError callback threw', 'the alerting call failed'],
    ['an onDeadLetter callback threw', 'the dead-letter table is down']
  ]) {
    // pino's serializer appends the causes' messages to the error's own.
    t.ok(messages.some(([m, e]) => m === msg && e?.startsWith(err as string) === true), `logged: "${msg}" with the error "${err}"`)
  }
  const inboxFailure = entries.find((entry) => (entry.err as { message?: string } | undefined)?.message?.startsWith('the insert failed') === true)
  t.match(inboxFailure?.err, { type: 'Error', message: 'the insert failed: inner', code: '22P02', command: { name: 'set' } }, 'the error keeps its class, message and code')
  t.match((inboxFailure?.err as { stack?: string }).stack, /the insert failed/, 'and its stack')
  t.notOk(logs.text().includes(MARKER), 'the marker is in no log line')
})

test('an inbox that fails to start with an echoing error logs it without the data', async (t) => {
  const logs = captureLogs()
  class BrokenStart extends MemoryInbox {
    override start (): Promise<void> { return Promise.reject(echoingError('the schema check failed')) }
  }
  const webhooks = new Webhooks({ secret: SECRET, logger: logs.logger, inbox: new BrokenStart() })
  t.equal((await webhooks.receive(delivery())).code, 'INBOX_UNAVAILABLE')
  await webhooks.close()
  t.ok(logs.entries().some((entry) => (entry.err as { message?: string } | undefined)?.message === 'the schema check failed: inner'))
  t.notOk(logs.text().includes(MARKER))
})

test('safeError: the same object when nothing echoes; a copy without the fields otherwise', async (t) => {
  const plain = Object.assign(new TypeError('plain'), { code: 'E_PLAIN' })
  t.equal(safeError(plain), plain, 'no copy in the common case')
  t.equal(safeError('a string'), 'a string')
  t.equal(safeError(undefined), undefined)
  const copy = safeError(echoingError('outer')) as Error & Record<string, unknown>
  t.ok(copy instanceof Error)
  t.equal(copy.message, 'outer')
  t.same(Object.keys(copy).sort(), ['code', 'command'])
  t.equal((copy.cause as Error).message, 'inner')
  t.equal((copy.cause as Record<string, unknown>).detail, undefined)
  const aggregate = safeError(new AggregateError([echoingError('one')], 'many')) as AggregateError
  t.equal((aggregate.errors[0] as Record<string, unknown>).where, undefined)
  const thrownObject = safeError({ message: 'not an Error', detail: MARKER }) as Record<string, unknown>
  t.same(thrownObject, { message: 'not an Error' })
  const cycle = new Error('cycle') as Error & { cause?: unknown }
  cycle.cause = cycle
  t.doesNotThrow(() => JSON.stringify(safeError(cycle), ['message', 'cause']), 'a cause that is its own cause ends')
})

test('a handler\'s log is the pino logger itself, and its error-first form is made safe too', async (t) => {
  const logs = captureLogs('trace')
  const webhooks = new Webhooks({ secret: SECRET, logger: logs.logger })
  const seen: Array<[unknown, unknown, unknown, unknown]> = []
  webhooks.on('action.completed', function audit (event, { log }) {
    const pinoLog = log as unknown as { trace: unknown, fatal: unknown, level: unknown, bindings: () => Record<string, unknown> }
    seen.push([typeof pinoLog.trace, typeof pinoLog.fatal, pinoLog.level, pinoLog.bindings().event])
    ;(log as unknown as { trace: (message: string) => void }).trace('tracing a run')
    // pino's own error-first call, the form most handlers write.
    log.error(echoingError('the ledger write failed') as unknown as object, 'ledger write failed')
  })
  t.equal((await webhooks.receive(delivery('evt_error_first'))).code, 'ACCEPTED')
  await eventually(() => seen.length === 1, 5000, 'the handler ran')
  await webhooks.close()
  t.same(seen[0]?.slice(0, 3), ['function', 'function', 'trace'], 'trace, fatal and level are pino\'s')
  t.match(seen[0]?.[3], { id: 'evt_error_first' }, 'and bindings() has the event')
  const entries = logs.entries()
  t.ok(entries.some((entry) => entry.msg === 'tracing a run'), 'trace() wrote its line')
  const failure = entries.find((entry) => entry.msg === 'ledger write failed')
  t.match(failure?.err, { message: 'the ledger write failed: inner', code: '22P02' }, 'the error is logged, its message and code kept')
  t.notOk(logs.text().includes(MARKER), 'the marker is in no log line')
  t.notOk(entries.some((entry) => /failed|threw/.test(String(entry.msg)) && entry.msg !== 'ledger write failed'), 'the handler did not fail')
})
