import { createRequire } from 'node:module'
import type { OpenTelemetryApi } from './telemetry-types.js'

let loaded: OpenTelemetryApi | null | undefined

/**
 * `@opentelemetry/api` when the application has it installed, else undefined.
 * An optional peer: required synchronously, so a receiver knows at construction
 * whether an SDK registered global providers, and only once per process. Node
 * resolves both `import` and `require` of the API to its CommonJS build, so this
 * is the same module instance, with the same globals, the application uses.
 */
export function loadOpenTelemetryApi (): OpenTelemetryApi | undefined {
  if (loaded === undefined) {
    try {
      loaded = createRequire(import.meta.url)('@opentelemetry/api') as OpenTelemetryApi
    } catch {
      loaded = null
    }
  }
  return loaded ?? undefined
}
