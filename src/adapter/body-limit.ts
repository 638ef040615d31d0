export { overLimit } from '../core/delivery.js'

/** The Content-Length a request declares, when it declares a usable one. */
export function declaredLength (value: string | null | undefined): number | undefined {
  if (typeof value !== 'string' || !/^[0-9]{1,15}$/.test(value)) return undefined
  return Number(value)
}

/** How reading a body under the limit ended, whichever runtime read it. */
export type BodyRead<Body> =
  | { readonly kind: 'complete', readonly body: Body }
  /** Over the limit: by its Content-Length before a byte was read, or while streaming. */
  | { readonly kind: 'too_large', readonly declaredBytes: number | undefined, readonly receivedBytes: number }
  /** The client went away (or the stream failed) before the body ended; nobody is left to answer. */
  | { readonly kind: 'aborted', readonly error: unknown }

/** The log fields of a 413, the same from every adapter. */
export function tooLargeDetails (read: { declaredBytes: number | undefined, receivedBytes: number }, limit: number): Record<string, unknown> {
  return { bodyLimit: limit, declaredLength: read.declaredBytes, receivedBytes: read.receivedBytes }
}
