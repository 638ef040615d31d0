// The operator's flow through `sir-webhooks inbox` against a store while a receiver
// runs on it, shared by inbox-sqlite, inbox-bullmq and inbox-postgres.test.ts (one
// file per store: together, under CI load, they outran tap's per-file timeout).
import type { Test } from 'tap'
import { Webhooks, type Delivery, type Inbox } from '../../src/index.js'
import { captureLogs } from '../helpers/logs.js'
import { SECRET, actionCompleted, eventually, signedRequest } from '../helpers/deliveries.js'
import { runCli } from './helpers.js'

function delivery (body: ReturnType<typeof actionCompleted>): Delivery {
  const request = signedRequest(body)
  return { contentType: 'application/json', signature: request.headers['x-sir-signature'], timestamp: request.headers['x-sir-timestamp'], rawBody: request.body }
}

/**
 * A receiver whose one handler fails (one attempt: the event dies at once) until
 * `fix()`; then a re-driven event succeeds. The test drives the CLI against the
 * inbox's store while the receiver runs, as an operator would.
 */
async function deadLetterIn (t: Test, inbox: Inbox): Promise<{ webhooks: Webhooks, id: string, fix: () => void }> {
  let broken = true
  const webhooks = new Webhooks({ secret: SECRET, logger: captureLogs().logger, inbox, retry: { attempts: 1 } })
  t.teardown(() => webhooks.close())
  webhooks.on('action.completed', async function creditPartner () {
    if (broken) throw new Error('partner API answered 502\nwith a second line')
  })
  const event = actionCompleted()
  t.equal((await webhooks.receive(delivery(event))).code, 'ACCEPTED')
  await eventually(() => webhooks.stats().deadLetters === 1, 15_000, 'the event to die')
  return { webhooks, id: event.id, fix: () => { broken = false } }
}

export async function operatorFlow (t: Test, store: string[], inbox: Inbox & { outcome: NonNullable<Inbox['outcome']> }): Promise<void> {
  const { id, fix } = await deadLetterIn(t, inbox)

  const dead = await runCli(['inbox', 'dead', ...store])
  t.equal(dead.code, 0, dead.stderr)
  t.match(dead.stdout, /^ID\s+TYPE\s+ATTEMPTS\s+LAST ERROR\s+DEAD SINCE\n/, 'a table with a header')
  t.match(dead.stdout, new RegExp(`${id}\\s+action\\.completed\\s+1\\s+creditPartner: Error: partner API answered 502 with a[^\\n]*…\\s+\\d{4}-\\d\\d-\\d\\dT`), 'one row per dead letter, the error on one line')

  const deadJson = await runCli(['inbox', 'dead', '--json', ...store])
  t.equal(deadJson.code, 0, deadJson.stderr)
  t.match(JSON.parse(deadJson.stdout), [{ id, type: 'action.completed', state: 'dead', attempts: 1, lastError: /partner API answered 502/ }])

  const shown = await runCli(['inbox', 'show', id, ...store])
  t.equal(shown.code, 0, shown.stderr)
  t.match(shown.stdout, new RegExp(`id\\s+${id}\\n`))
  t.match(shown.stdout, /state\s+dead\n/)
  t.match(shown.stdout, /"tokensDistributed": ?50/, 'with the event itself (as received where the store keeps the body)')
  const shownJson = JSON.parse((await runCli(['inbox', 'show', id, '--json', ...store])).stdout) as Record<string, unknown>
  t.match(shownJson, { id, state: 'dead', event: { id, type: 'action.completed' } })

  const stats = JSON.parse((await runCli(['inbox', 'stats', '--json', ...store])).stdout) as Record<string, number>
  t.match(stats, { pending: 0, done: 0, dead: 1 })

  fix()
  const redrive = await runCli(['inbox', 'redrive', id, ...store])
  t.equal(redrive.code, 0, redrive.stderr)
  t.match(redrive.stdout, `re-drove ${id}`)
  await waitForState(inbox, id, 'done')
  t.pass('the running receiver ran the re-driven event, and it succeeded')

  const again = await runCli(['inbox', 'redrive', id, ...store])
  t.equal(again.code, 1, 'no dead event by that id any more: exit 1')
  t.match(again.stderr, `no dead event with id "${id}"`)
  const missing = await runCli(['inbox', 'show', 'evt_never_seen', ...store])
  t.equal(missing.code, 1)

  const table = await runCli(['inbox', 'stats', ...store])
  t.match(table.stdout, /^STATE\s+EVENTS\npending\s+0\ndone\s+1\ndead\s+0\n\noldest waiting {2}(none waiting|not known to this store)\npaused {10}(nothing|no flow control on this store)\n$/)

  const kept = JSON.parse((await runCli(['inbox', 'purge', '--before', '2000-01-01', '--yes', '--json', ...store])).stdout) as Record<string, unknown>
  t.match(kept, { done: 0, dead: 0 }, 'nothing finished before 2000')
  const now = new Date().toISOString()
  const unconfirmed = await runCli(['inbox', 'purge', '--before', now, ...store])
  t.equal(unconfirmed.code, 2, 'no --yes and no terminal: a usage error')
  t.match(unconfirmed.stderr, 'add --yes to confirm')
  t.match(await inbox.outcome(id), { state: 'done' }, 'and nothing deleted')
  const dry = JSON.parse((await runCli(['inbox', 'purge', '--before', now, '--dry-run', '--json', ...store])).stdout) as Record<string, unknown>
  t.same(dry, { before: now, dryRun: true, done: 1, dead: 0 }, 'a dry run counts the done event')
  t.match(await inbox.outcome(id), { state: 'done' }, 'and deletes nothing')
  const purged = await runCli(['inbox', 'purge', '--before', now, '--yes', ...store])
  t.equal(purged.code, 0, purged.stderr)
  t.match(purged.stdout, /purged 1 done and 0 dead event/)
  t.equal(await inbox.outcome(id), undefined, 'gone from the store')
}

async function waitForState (inbox: { outcome: NonNullable<Inbox['outcome']> }, id: string, state: string): Promise<void> {
  const deadline = Date.now() + 15_000
  while ((await inbox.outcome(id))?.state !== state) {
    if (Date.now() > deadline) throw new Error(`event ${id} did not reach ${state}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

