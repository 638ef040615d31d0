import { sign } from '../../src/index.js'

export const SECRET = 'whsec_conformance_test_secret'

let counter = 0
/** A fresh, unique event id per call, so tests never collide in the dedupe cache. */
export function freshId (): string {
  counter += 1
  return `evt_${process.pid}_${Date.now()}_${counter}`
}

export interface Envelope {
  id: string
  type: string
  createdAt?: string
  data: unknown
  [field: string]: unknown
}

export function actionCompleted (overrides: Partial<Envelope> = {}): Envelope {
  return {
    id: freshId(),
    type: 'action.completed',
    createdAt: '2026-05-10T09:12:00Z',
    data: { actionId: 'act_1', tokensDistributed: 50 },
    ...overrides
  }
}

export interface SignedRequestOptions {
  secret?: string
  /** Unix seconds; default now. */
  timestamp?: number | string
  contentType?: string | null
  headers?: Record<string, string>
}

/** Every secret a request was signed with and every signature made: what must never be emitted. */
export const signingSecrets = new Set<string>([SECRET])
export const signaturesMade = new Set<string>()

/** A request exactly as SIR Giving sends it: the body signed over its bytes. */
export function signedRequest (body: string | Uint8Array | Envelope, options: SignedRequestOptions = {}): { body: Uint8Array, headers: Record<string, string> } {
  const bytes = typeof body === 'string'
    ? Buffer.from(body)
    : body instanceof Uint8Array ? body : Buffer.from(JSON.stringify(body))
  const signed = sign({ secret: options.secret ?? SECRET, rawBody: bytes, ...(options.timestamp === undefined ? {} : { timestamp: options.timestamp }) })
  signingSecrets.add(options.secret ?? SECRET)
  signaturesMade.add(signed.signature)
  const headers: Record<string, string> = {
    'user-agent': 'SIRGiving-Webhooks/1.0',
    'x-sir-signature': signed.signature,
    'x-sir-timestamp': signed.timestamp
  }
  if (options.contentType !== null) headers['content-type'] = options.contentType ?? 'application/json'
  return { body: bytes, headers: { ...headers, ...options.headers } }
}

export interface Answer {
  status: number
  headers: Headers
  json: Record<string, unknown>
}

/** POSTs over a real socket and reads the whole answer. */
export async function post (url: string, request: { body: Uint8Array, headers: Record<string, string> }): Promise<Answer> {
  const response = await fetch(url, { method: 'POST', body: request.body, headers: request.headers })
  const text = await response.text()
  let json: Record<string, unknown> = {}
  try {
    json = JSON.parse(text) as Record<string, unknown>
  } catch {
    // Some refusals (an adapter's own) may have no JSON body; status is what counts.
  }
  return { status: response.status, headers: response.headers, json }
}

/** A promise with its resolve exposed: lets a test hold a handler open and release it. */
export function gate (): { promise: Promise<void>, open: () => void } {
  let open!: () => void
  const promise = new Promise<void>((resolve) => { open = resolve })
  return { promise, open }
}

/** Polls until `predicate` holds, failing after `timeoutMs` (generous: CI machines are slow). */
export async function eventually (predicate: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
