// Bodies and signatures for the benchmark: the same two events for every server,
// each request with an event id never sent before, signed the way its server expects.
import { createHash, createHmac, randomBytes } from 'node:crypto'

export const PATH = '/webhooks/sir'

// Valid for SIR (any string is an HMAC key) and for standardwebhooks, which
// base64-decodes what follows `whsec_`.
export const SECRET = 'whsec_' + randomBytes(32).toString('base64')

const SIZES = { small: 300, large: 8 * 1024 }
const ID_WIDTH = 16

function dataOfSize (targetBytes) {
  const data = {
    actionId: 'act_7Hq2LmX9', tokensDistributed: 50, partnerId: 'ptn_41c0', userId: 'usr_9a3f11', campaignId: 'cmp_2026_spring'
  }
  const items = []
  // Filler shaped like a real payload (a list of recipients), not one long string.
  while (JSON.stringify({ ...data, recipients: items }).length < targetBytes - 120) {
    items.push({ userId: `usr_${(items.length + 1000).toString(36)}`, tokens: 5 + (items.length % 7), reason: 'campaign_reward' })
  }
  if (items.length > 0) data.recipients = items
  return data
}

/**
 * An event with its id last. Receivers read fields by name, so the order changes
 * nothing for them; it lets the load generator hash everything before the id once
 * per run and sign each fresh id for the cost of one short hash instead of a
 * full-body HMAC, so the load generator stays far ahead of the servers.
 */
export function eventTemplate (size) {
  const target = SIZES[size]
  if (target === undefined) throw new Error(`unknown body size ${size}`)
  const head = JSON.stringify({ type: 'action.completed', createdAt: '2026-05-10T09:12:00Z', data: dataOfSize(target) })
  const prefix = Buffer.from(head.slice(0, -1) + ',"id":"')
  const suffix = Buffer.from('"}')
  return { size, prefix, suffix, bytes: prefix.length + ID_WIDTH + suffix.length }
}

/** HMAC-SHA256 split at a known prefix (RFC 2104 by hand, since `Hmac` has no `copy()`). */
class PrefixHmac {
  constructor (key, signedPrefix) {
    let block = Buffer.from(key)
    if (block.length > 64) block = createHash('sha256').update(block).digest()
    const padded = Buffer.alloc(64)
    block.copy(padded)
    const inner = Buffer.alloc(64)
    const outer = Buffer.alloc(64)
    for (let i = 0; i < 64; i++) {
      inner[i] = padded[i] ^ 0x36
      outer[i] = padded[i] ^ 0x5c
    }
    this.inner = createHash('sha256').update(inner)
    for (const part of signedPrefix) this.inner.update(part)
    this.outer = createHash('sha256').update(outer)
  }

  digest (...rest) {
    const inner = this.inner.copy()
    for (const part of rest) inner.update(part)
    return this.outer.copy().update(inner.digest()).digest()
  }
}

let runCounter = 0

/**
 * Produces signed deliveries for one server scheme and one body size. `refresh()`
 * takes a new timestamp (call it at the start of each load run, so every request
 * is well inside the 300-second window); `next()` returns the next request with
 * an id unique in this process.
 */
export class DeliverySource {
  constructor (scheme, size, secret = SECRET) {
    this.scheme = scheme
    this.template = eventTemplate(size)
    this.secret = secret
    this.counter = 0
    this.tag = `${process.pid.toString(36)}${(runCounter++).toString(36)}`
    this.refresh()
  }

  refresh () {
    this.timestamp = String(Math.floor(Date.now() / 1000))
    const { prefix } = this.template
    if (this.scheme === 'sir') {
      this.hmac = new PrefixHmac(this.secret, [this.timestamp + '.', prefix])
    } else if (this.scheme === 'github') {
      this.hmac = new PrefixHmac(this.secret, [prefix])
    } else if (this.scheme === 'standard') {
      // The message id comes first in what standardwebhooks signs, so no prefix can
      // be hashed ahead: each delivery gets a full HMAC (a few µs of the load
      // generator's core at ~300 B, ~15 µs at ~8 KB), and a fresh `webhook-id`.
      this.standardKey = Buffer.from(this.secret.slice('whsec_'.length), 'base64')
      this.hmac = undefined
    } else {
      throw new Error(`unknown signature scheme ${this.scheme}`)
    }
  }

  nextId () {
    this.counter += 1
    const id = `${this.tag}_${this.counter.toString(36)}`
    return id.length >= ID_WIDTH ? id.slice(-ID_WIDTH) : id.padStart(ID_WIDTH, '0')
  }

  /** `{ id, body, headers }` for the next delivery. */
  next () {
    const id = this.nextId()
    const idBytes = Buffer.from(id)
    const { prefix, suffix } = this.template
    const body = Buffer.concat([prefix, idBytes, suffix])
    const digest = this.scheme === 'standard'
      ? createHmac('sha256', this.standardKey).update(`${id}.${this.timestamp}.`).update(body).digest()
      : this.hmac.digest(idBytes, suffix)
    const headers = { 'content-type': 'application/json', 'user-agent': 'SIRGiving-Webhooks/1.0' }
    if (this.scheme === 'sir') {
      headers['x-sir-timestamp'] = this.timestamp
      headers['x-sir-signature'] = 'sha256=' + digest.toString('hex')
    } else if (this.scheme === 'github') {
      headers['x-github-event'] = 'action_completed'
      headers['x-github-delivery'] = id
      headers['x-hub-signature-256'] = 'sha256=' + digest.toString('hex')
    } else {
      // The event's own id, fresh for every delivery as for the other schemes.
      headers['webhook-id'] = id
      headers['webhook-timestamp'] = this.timestamp
      headers['webhook-signature'] = 'v1,' + digest.toString('base64')
    }
    return { id, body, headers }
  }

  /** Cross-checks the split HMAC against node:crypto's own, so a wrong signature fails loudly here and not as 401s. */
  selfCheck () {
    const { body, headers } = this.next()
    let expected
    if (this.scheme === 'sir') {
      expected = 'sha256=' + createHmac('sha256', this.secret).update(this.timestamp + '.').update(body).digest('hex')
      if (headers['x-sir-signature'] !== expected) throw new Error('bench: SIR signature self-check failed')
    } else if (this.scheme === 'github') {
      expected = 'sha256=' + createHmac('sha256', this.secret).update(body).digest('hex')
      if (headers['x-hub-signature-256'] !== expected) throw new Error('bench: GitHub signature self-check failed')
    } else {
      const key = Buffer.from(this.secret.slice('whsec_'.length), 'base64')
      expected = 'v1,' + createHmac('sha256', key).update(`${headers['webhook-id']}.${this.timestamp}.`).update(body).digest('base64')
      if (headers['webhook-signature'] !== expected) throw new Error('bench: standardwebhooks signature self-check failed')
    }
    JSON.parse(body.toString())
  }
}

/**
 * autocannon's `requests` for a load run: each request a fresh delivery from
 * `source` (a new event id, signed now), after checking the source signs right.
 */
export function freshDeliveries (source) {
  source.selfCheck()
  source.refresh()
  return [{
    setupRequest (request) {
      const delivery = source.next()
      request.headers = delivery.headers
      request.body = delivery.body
      return request
    }
  }]
}
