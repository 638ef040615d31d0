import type { Webhooks } from '../../src/index.js'

/** A running server that routes POST `path` to one receiver. */
export interface RunningAdapter {
  /** Absolute URL of the webhook route, e.g. http://127.0.0.1:40123/webhooks/sir */
  url: string
  /** Closes the server and the receiver (`webhooks.close()`); safe to call twice. */
  close (): Promise<void>
}

/**
 * One adapter under the conformance suite. Each scenario in `scenarios.ts` is
 * written once and run against every harness in `adapters.ts`, over a real
 * socket on 127.0.0.1, port 0.
 */
export interface AdapterHarness {
  name: string
  /**
   * True where the framework hands the adapter a URL already resolved by the URL
   * standard (a fetch `Request`): dot segments and backslashes are gone before the
   * adapter can see them, so they are the one routing difference (docs/design.md).
   */
  targetNormalized?: boolean
  start (webhooks: Webhooks, options: { path: string }): Promise<RunningAdapter>
}
