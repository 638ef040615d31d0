// The stores the durable benchmarks run against, and the pinning they share: the
// load generator (this process) on CPU 0, receivers on CPU 1, the stores
// (Postgres, Redis) on every CPU, as they would run on machines of their own.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { canPin, pinSelfToLoadCpu, unpinSelf } from './pinning.js'
import { freePort, startPostgresCluster } from '../test/helpers/postgres-cluster.js'

export const pinned = canPin()
if (pinned) pinSelfToLoadCpu()

const cleanups = []

/**
 * Runs `start` unpinned, so that a store it starts inherits every CPU: started
 * from CPU 0, Postgres's backends shared one core with autocannon (about 3 000
 * acknowledged/s where unpinned gave 4 400).
 */
async function unpinnedWhile (start) {
  if (!pinned) return await start()
  unpinSelf()
  try {
    return await start()
  } finally {
    pinSelfToLoadCpu()
  }
}

/**
 * Where an inbox of `kind` stores: a fresh SQLite file in a temporary folder,
 * or a Postgres cluster and a Redis server started here unless SIR_POSTGRES_URL
 * and SIR_REDIS_URL name running ones. Postgres keeps fsync on: the figures are
 * for commits that survive a power cut. Removed by `stopStores()`.
 */
export async function storeFor (kind) {
  if (kind === 'memory') return ''
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(os.tmpdir(), 'sir-bench-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    return join(dir, 'inbox.db')
  }
  if (kind === 'postgres') {
    if (process.env.SIR_POSTGRES_URL) return process.env.SIR_POSTGRES_URL
    return await unpinnedWhile(async () => {
      const cluster = await startPostgresCluster({ fsync: true })
      cleanups.push(() => cluster.stop())
      return cluster.url
    })
  }
  if (kind === 'bullmq') {
    if (process.env.SIR_REDIS_URL) return process.env.SIR_REDIS_URL
    return await unpinnedWhile(async () => {
      const port = await freePort()
      const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
      cleanups.push(() => redis.kill('SIGTERM'))
      await new Promise((resolve) => setTimeout(resolve, 500))
      return `redis://127.0.0.1:${port}`
    })
  }
  throw new Error(`unknown inbox ${kind}`)
}

/** Stops what `storeFor` started, newest first. */
export async function stopStores () {
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup()
    } catch (error) {
      console.error(`bench: a store did not stop cleanly: ${error.message}`)
    }
  }
}

/** One IPC answer of a receiver child to `question`. */
export function ask (child, question) {
  return new Promise((resolve) => {
    child.once('message', resolve)
    child.send(question)
  })
}

/** Waits for a receiver child's `{ type: 'ready', port }`, or fails naming `label`. */
export function readyOf (child, label) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label}: no "ready" within 30 s`)), 30_000)
    child.once('message', (message) => { clearTimeout(timer); resolve({ child, port: message.port }) })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${label}: exited with ${code} before it was ready`)) })
  })
}

/** Asks a receiver child to close its receiver and exit; kills it after 15 s. */
export async function stopReceiver (child) {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.send('stop')
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
  await exited
  clearTimeout(timer)
}
