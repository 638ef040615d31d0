import { sign, Webhooks, type Delivery, type Inbox, type WebhookLogger, type WebhooksOptions } from '../../src/index.js'

export const SECRET = 'whsec_inbox_contract'

export function event (id: string, type = 'action.completed'): Record<string, unknown> {
  return { id, type, createdAt: '2026-05-10T09:12:00Z', data: { actionId: `act_${id}`, tokensDistributed: 50 } }
}

export function delivery (body: unknown, secret = SECRET): Delivery {
  const rawBody = Buffer.from(JSON.stringify(body))
  const { timestamp, signature } = sign({ secret, rawBody })
  return { contentType: 'application/json', signature, timestamp, rawBody }
}

/** Signs and posts an event over HTTP, as the platform would. */
export async function post (url: string, body: unknown, secret = SECRET): Promise<number> {
  const { rawBody, signature, timestamp } = delivery(body, secret)
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-sir-signature': signature ?? '', 'x-sir-timestamp': timestamp ?? '' },
    body: rawBody
  })
  await response.arrayBuffer()
  return response.status
}

export interface LogEntry { level: string, msg: string | undefined, fields: Record<string, unknown> }

/** A pino-shaped logger that keeps what it is told, so tests can assert on logged fields. */
export function captureLogger (entries: LogEntry[] = [], bindings: Record<string, unknown> = {}): WebhookLogger & { entries: LogEntry[] } {
  const at = (level: string) => (fields: object | string, msg?: string): void => {
    if (typeof fields === 'string') entries.push({ level, msg: fields, fields: { ...bindings } })
    else entries.push({ level, msg, fields: { ...bindings, ...fields } })
  }
  return {
    entries,
    child: (more) => captureLogger(entries, { ...bindings, ...more }),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error')
  }
}

export function receiver (inbox: Inbox, options: Partial<WebhooksOptions> = {}): Webhooks & { log: LogEntry[] } {
  const logger = captureLogger()
  const webhooks = new Webhooks({
    secret: SECRET,
    retry: { attempts: 3, minDelayMs: 5, maxDelayMs: 20 },
    closeGraceMs: 2_000,
    logger,
    inbox,
    ...options
  })
  return Object.assign(webhooks, { log: logger.entries })
}

/** Polls until `check` holds; the bound is generous because CI machines are slow. */
export async function until (check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

export async function sleep (ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}
