import {
  SIGNATURE_PREFIX,
  checkHeaders,
  currentTimestamp,
  refused,
  secretList,
  type SignInput,
  type Signature,
  type VerifyInput,
  type VerifyRequest,
  type VerifyResult
} from './signature-checks.js'

// The Web Crypto verifier, for fetch runtimes without node: modules (Workers,
// Vercel Edge, browsers). Web Crypto is asynchronous, so this path is too; the
// Node receiver keeps the synchronous node:crypto one.

// Named from the global rather than imported, so not even a type import names a node: module.
type CryptoKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>

const encoder = new TextEncoder()
const HMAC = { name: 'HMAC', hash: 'SHA-256' } as const

function importKey (secret: string, usage: 'sign' | 'verify'): Promise<CryptoKey> {
  return crypto.subtle.importKey('raw', encoder.encode(secret), HMAC, false, [usage])
}

/** `timestamp + "." + rawBody` as one byte array: Web Crypto has no streaming update. */
function signedPayload (timestamp: string, rawBody: Uint8Array | string): Uint8Array {
  const prefix = encoder.encode(timestamp + '.')
  const body = typeof rawBody === 'string' ? encoder.encode(rawBody) : rawBody
  const payload = new Uint8Array(prefix.byteLength + body.byteLength)
  payload.set(prefix, 0)
  payload.set(body, prefix.byteLength)
  return payload
}

function hexToBytes (hex: string): Uint8Array {
  const bytes = new Uint8Array(hex.length / 2)
  for (let index = 0; index < bytes.length; index++) bytes[index] = parseInt(hex.slice(index * 2, index * 2 + 2), 16)
  return bytes
}

function bytesToHex (bytes: ArrayBuffer): string {
  return Array.from(new Uint8Array(bytes), (byte) => byte.toString(16).padStart(2, '0')).join('')
}

/**
 * The receiver's verifier on Web Crypto. Keys are imported on first use and kept;
 * `crypto.subtle.verify` compares the MAC itself, in constant time.
 */
export function createWebVerifier (secrets: readonly string[]): (input: VerifyRequest) => Promise<VerifyResult> {
  let keys: Promise<CryptoKey[]> | undefined
  return async (input) => {
    const checked = checkHeaders(input)
    if (!checked.ok) return checked
    // A failed import (Web Crypto refuses a zero-length key) is not kept, so a
    // later call tries again instead of failing forever.
    keys ??= Promise.all(secrets.map((secret) => importKey(secret, 'verify'))).catch((error: unknown) => {
      keys = undefined
      throw error
    })
    const provided = hexToBytes(checked.signatureHex)
    const payload = signedPayload(checked.timestampHeader, input.rawBody)
    const imported = await keys
    for (let index = 0; index < imported.length; index++) {
      if (await crypto.subtle.verify('HMAC', imported[index] as CryptoKey, provided, payload)) {
        return { ok: true, secretIndex: index, timestamp: checked.seconds, skewSeconds: checked.skewSeconds }
      }
    }
    return refused('SIGNATURE_MISMATCH', checked.skewSeconds)
  }
}

/**
 * `verify` on Web Crypto: the same answers, asynchronously, on any runtime with
 * `crypto.subtle`. It rejects only for a secret Web Crypto cannot import (an
 * empty string), which a receiver refuses at construction anyway.
 */
export function verifyAsync (input: VerifyInput): Promise<VerifyResult> {
  return createWebVerifier(secretList(input.secret))(input)
}

/** `sign` on Web Crypto, for tests and senders on fetch runtimes. */
export async function signAsync (input: SignInput): Promise<Signature> {
  const timestamp = currentTimestamp(input.timestamp)
  const key = await importKey(input.secret, 'sign')
  const mac = await crypto.subtle.sign('HMAC', key, signedPayload(timestamp, input.rawBody))
  return { timestamp, signature: SIGNATURE_PREFIX + bytesToHex(mac) }
}
