import type { AdapterHarness } from './harness.js'
import { fastifyHarness } from './fastify.harness.js'

/** Every adapter the conformance suite runs against. Add a harness here, once. */
export const adapters: AdapterHarness[] = [fastifyHarness]
