import type { AdapterHarness } from './harness.js'
import { fastifyHarness } from './fastify.harness.js'
import { express4Harness, expressHarness } from './express.harness.js'
import { nodeHarness } from './node.harness.js'
import { fetchHarness } from './fetch.harness.js'

/** Every adapter the conformance suite runs against. Add a harness here, once. */
export const adapters: AdapterHarness[] = [fastifyHarness, expressHarness, express4Harness, nodeHarness, fetchHarness]
