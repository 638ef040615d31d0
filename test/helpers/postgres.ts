import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { findPostgresBin, startPostgresCluster } from './postgres-cluster.js'

/**
 * A PostgreSQL for the Postgres inbox tests. `SIR_POSTGRES_URL` names one
 * (`.ci/run` starts it); without it, a throwaway cluster is made with the local
 * binaries (Debian's `postgresql` package) and deleted when the test ends. In CI
 * (`CI=true`) a missing server fails the test loudly; locally the test may skip,
 * with the reason.
 */
export type PostgresForTests =
  | { url: string }
  | { url: undefined, reason: string }

interface Teardown { teardown (fn: () => unknown): void }

const inCI = process.env.CI === 'true' || process.env.CI === '1'

async function answers (url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.query('SELECT 1')
    return true
  } catch {
    return false
  } finally {
    await client.end().catch(() => {})
  }
}

function fail (reason: string): never {
  throw new Error(`sir-webhooks tests: PostgreSQL is required in CI and ${reason}. Install postgresql or set SIR_POSTGRES_URL (.ci/run does both).`)
}

export async function postgresForTests (t: Teardown): Promise<PostgresForTests> {
  const given = process.env.SIR_POSTGRES_URL
  if (given !== undefined && given !== '') {
    if (await answers(given)) return { url: given }
    const reason = `SIR_POSTGRES_URL=${given} does not answer`
    if (inCI) fail(reason)
    return { url: undefined, reason }
  }
  if (findPostgresBin() === undefined) {
    const reason = 'the PostgreSQL server binaries are not installed (apt-get install postgresql) and SIR_POSTGRES_URL is not set'
    if (inCI) fail(reason)
    return { url: undefined, reason }
  }
  let cluster
  try {
    cluster = await startPostgresCluster()
  } catch (error) {
    const reason = `a throwaway cluster did not start: ${(error as Error).message}`
    if (inCI) fail(reason)
    return { url: undefined, reason }
  }
  const { stop } = cluster
  t.teardown(stop)
  // Also when the test process ends early (tap's timeout sends SIGTERM): no server
  // or folder is left behind. pg_ctl detaches the server, so nothing else stops it.
  process.once('exit', stop)
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      stop()
      process.exit(128 + (signal === 'SIGTERM' ? 15 : 2))
    })
  }
  return { url: cluster.url }
}

/** A schema name of its own per test: tests share one server and must not see each other's events. */
export function freshSchema (prefix = 'sir_test'): string {
  return `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 16)}`
}
