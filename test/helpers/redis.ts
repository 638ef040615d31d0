import { spawn, spawnSync } from 'node:child_process'
import { Redis } from 'ioredis'
import { freePort } from './free-port.js'

/**
 * A Redis for the BullMQ tests. `SIR_REDIS_URL` names one (`.ci/run` starts it);
 * without it, a private `redis-server` is started on a free port and stopped
 * when the test ends. In CI (`CI=true`) a missing Redis fails the test loudly;
 * locally the test may skip, with the reason.
 */
export type RedisForTests =
  | { url: string, connection: { host: string, port: number } }
  | { url: undefined, reason: string }

interface Teardown { teardown (fn: () => unknown): void }

const inCI = process.env.CI === 'true' || process.env.CI === '1'

async function ping (url: string, timeoutMs = 2000): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null })
  client.on('error', () => {})
  try {
    await client.connect()
    return await client.ping() === 'PONG'
  } catch {
    return false
  } finally {
    client.disconnect()
  }
}

function fail (reason: string): never {
  throw new Error(`sir-webhooks tests: Redis is required in CI and ${reason}. Install redis-server or set SIR_REDIS_URL (.ci/run does both).`)
}

function toConnection (url: string): { host: string, port: number } {
  const parsed = new URL(url)
  return { host: parsed.hostname, port: Number(parsed.port === '' ? 6379 : parsed.port) }
}

/**
 * `own: true` starts a private redis-server even when SIR_REDIS_URL names a
 * shared one: for a test that changes the server's settings (maxmemory) or fills
 * it, which would otherwise reach the test files running beside it.
 */
export async function redisForTests (t: Teardown, { own = false }: { own?: boolean } = {}): Promise<RedisForTests> {
  const given = own ? undefined : process.env.SIR_REDIS_URL
  if (given !== undefined && given !== '') {
    if (await ping(given)) return { url: given, connection: toConnection(given) }
    const reason = `SIR_REDIS_URL=${given} does not answer PING`
    if (inCI) fail(reason)
    return { url: undefined, reason }
  }
  if (spawnSync('redis-server', ['--version']).status !== 0) {
    const reason = 'redis-server is not installed (apt-get install redis-server) and SIR_REDIS_URL is not set'
    if (inCI) fail(reason)
    return { url: undefined, reason }
  }
  const port = await freePort()
  const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  t.teardown(() => { server.kill('SIGTERM') })
  // Also when the test process dies early: no redis-server is left behind.
  process.once('exit', () => { server.kill('SIGKILL') })
  const url = `redis://127.0.0.1:${port}`
  for (let tries = 0; tries < 50; tries++) {
    if (await ping(url, 500)) return { url, connection: toConnection(url) }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const reason = `a redis-server started on port ${port} did not answer PING`
  if (inCI) fail(reason)
  return { url: undefined, reason }
}
