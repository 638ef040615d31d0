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
  start (webhooks: Webhooks, options: { path: string }): Promise<RunningAdapter>
}
