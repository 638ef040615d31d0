// The checks every runtime gets, sent over HTTP from this Node process: what
// SIR Giving would see (statuses) and what the user would see (handlers ran).
import { createDelivery } from 'sir-webhooks/testing'

const WEBHOOK_PATH = '/webhooks/sir'
const BATCH = 4
// Generous: a loaded 2-core CI box, and a handler that waits on a timer.
const HANDLERS_DEADLINE_MS = 15_000

/**
 * Runs the conformance against one server and returns `{ name, ok, detail }`
 * per check. `baseUrl` serves the webhook at /webhooks/sir and the record at
 * /__recorded.
 */
export async function conformance (baseUrl, secret, runId) {
  const results = []
  const check = (name, ok, detail) => { results.push({ name, ok: Boolean(ok), detail }) }
  const event = (n) => ({ id: `evt_${runId}_${n}`, type: 'action.completed', createdAt: new Date().toISOString(), data: { actionId: `act_${n}`, tokensDistributed: n } })

  const good = createDelivery(event('good'), { secret })
  const first = await post(baseUrl, good)
  check('a good delivery gets a 2xx', isSuccess(first.status), first)

  const forged = await post(baseUrl, createDelivery(event('forged'), { secret: 'whsec_not_the_secret' }))
  check('a bad signature gets 401', forged.status === 401, forged)

  const staleSeconds = Math.floor(Date.now() / 1000) - 3600
  const stale = await post(baseUrl, createDelivery(event('stale'), { secret, timestamp: staleSeconds }))
  check('a stale timestamp gets 401', stale.status === 401, stale)

  const duplicate = await post(baseUrl, good)
  check('a duplicate gets a 2xx', isSuccess(duplicate.status), duplicate)

  // Sent together, each in its own request: on Workers each has its own
  // ExecutionContext that ends when nothing keeps it alive.
  const batch = await Promise.all(Array.from({ length: BATCH }, (_, n) => post(baseUrl, createDelivery(event(`batch${n}`), { secret }))))
  check(`${BATCH} more deliveries each get a 2xx`, batch.every((answer) => isSuccess(answer.status)), batch.map((answer) => answer.status))

  const expected = [event('good').id, ...batch.map((_, n) => event(`batch${n}`).id)]
  const record = await waitForRecord(baseUrl, (seen) => expected.every((id) => seen.recorded.includes(id)))
  const ran = record.recorded.filter((id) => expected.includes(id))
  check(`the handlers of all ${expected.length} accepted deliveries ran to the end`, ran.length >= expected.length, { expected, recorded: record.recorded })
  // A little longer, so a second run of the duplicate would have time to show.
  await sleep(300)
  const final = await readRecord(baseUrl)
  const count = (id) => final.recorded.filter((seen) => seen === id).length
  check('the duplicated event was handled once', count(event('good').id) === 1, final.recorded)
  check('refused deliveries were never handled', count(event('forged').id) === 0 && count(event('stale').id) === 0, final.recorded)
  if (final.waitUntil !== undefined) {
    check('waitUntil was given one promise per accepted delivery, and each settled',
      final.waitUntil.given === expected.length && final.waitUntil.settled === expected.length, final.waitUntil)
  }
  return results
}

async function post (baseUrl, delivery) {
  const response = await fetch(new URL(WEBHOOK_PATH, baseUrl), { method: 'POST', headers: delivery.headers, body: delivery.body })
  return { status: response.status, body: await response.text() }
}

async function readRecord (baseUrl) {
  const response = await fetch(new URL('/__recorded', baseUrl))
  if (!response.ok) throw new Error(`GET /__recorded answered ${response.status}`)
  return await response.json()
}

async function waitForRecord (baseUrl, done) {
  const deadline = Date.now() + HANDLERS_DEADLINE_MS
  let record = await readRecord(baseUrl)
  while (!done(record) && Date.now() < deadline) {
    await sleep(50)
    record = await readRecord(baseUrl)
  }
  return record
}

function isSuccess (status) {
  return status >= 200 && status < 300
}

function sleep (ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
