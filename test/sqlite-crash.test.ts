import { join } from 'node:path'
import t from 'tap'
import { kill, startReceiver } from './fixtures/spawn-receiver.js'
import { SenderLog, inParallel, readHandled, resendLikeThePlatform, untilEveryAckedIsHandled } from './helpers/crash-run.js'
import { tempDir } from './inbox-contract/scenarios.js'

t.test('sqlite: a receiver killed with SIGKILL while events arrive loses none it answered 2xx, and handles none it refused', async (t) => {
  const dir = tempDir(t)
  const handledFile = join(dir, 'handled.txt')
  const env = {
    SIR_STORE: 'sqlite',
    SIR_DB: join(dir, 'inbox.db'),
    SIR_LEASE_MS: '800',
    SIR_SECRET: 'whsec_inbox_contract',
    SIR_HANDLED: handledFile,
    SIR_HANDLER_MS: '150',
    SIR_CONCURRENCY: '4',
    // Small, so that the burst below is partly answered 503 and those ids must stay unhandled.
    SIR_MAX_QUEUE: '12'
  }
  const ids = Array.from({ length: 80 }, (_, index) => `evt_${index}`)
  // Signed with the wrong secret: answered 401, and must never reach a handler.
  const forged = Array.from({ length: 8 }, (_, index) => `forged_${index}`)
  const forgedSecret = 'whsec_not_the_secret'
  const secretFor = (id: string): string | undefined => id.startsWith('forged') ? forgedSecret : undefined
  const mixed = ids.flatMap((id, index) => {
    const fake = index % 10 === 5 ? forged[Math.floor(index / 10)] : undefined
    return fake === undefined ? [id] : [id, fake]
  })
  const log = new SenderLog()

  const doomed = await startReceiver(env)
  t.teardown(() => kill(doomed, 'SIGKILL'))
  await inParallel(mixed, 6, async (id) => {
    await log.send(doomed.url, id, secretFor(id))
    if (log.answers === 40) doomed.child.kill('SIGKILL')
  })
  await kill(doomed, 'SIGKILL')
  t.ok(log.acked.size > 0 && log.refused.size > forged.length, 'before the kill, some events were accepted and some refused 503')
  const inFlight = doomed.started.filter((id) => !readHandled(handledFile).some((line) => line.id === id && line.pid === doomed.child.pid))
  t.ok(inFlight.length > 0, 'some handlers were running when the process was killed')

  const restarted = await startReceiver(env)
  t.teardown(() => kill(restarted, 'SIGTERM'))
  const abandoned = await resendLikeThePlatform(log, restarted.url, forgedSecret)
  t.same(forged.filter((id) => !log.refused.has(id)), [], 'every forged delivery was refused')

  await untilEveryAckedIsHandled(log, handledFile)
  const lines = readHandled(handledFile)
  const handled = new Set(lines.map((line) => line.id))
  t.same([...log.acked].filter((id) => !handled.has(id)), [], 'every event answered 2xx was handled')
  t.same([...log.refused].filter((id) => handled.has(id)), [], 'no refused event was handled')
  t.ok(abandoned.size > 0, 'some ids stayed refused')
  t.ok(inFlight.every((id) => handled.has(id)), 'the events cut off by the kill were resumed')
  const twice = [...handled].filter((id) => lines.filter((line) => line.id === id).length > 1)
  t.ok(twice.every((id) => doomed.started.includes(id)), 'only events running at the kill can be handled twice (at-least-once)')
  t.ok(lines.some((line) => line.pid === restarted.child.pid && line.attempt >= 2), 'resumed handlers were told it is a later attempt')
})
