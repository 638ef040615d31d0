// A throwaway PostgreSQL cluster for the tests and the inbox benchmark: initdb in
// a temporary folder, a server on a free port, stopped and deleted afterwards.
// Plain JavaScript so that bench/ (run by plain node) and the tests share it.
import { spawnSync } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './free-port.js'

export { freePort }

/** The newest Debian-installed server's binaries, or those on PATH, or undefined. */
export function findPostgresBin () {
  const root = '/usr/lib/postgresql'
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((name) => existsSync(join(root, name, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a))
    if (versions[0] !== undefined) return join(root, versions[0], 'bin')
  }
  const onPath = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' })
  const initdb = onPath.status === 0 ? onPath.stdout.trim() : ''
  return initdb === '' ? undefined : initdb.slice(0, -'/initdb'.length)
}

/** Postgres refuses to run as root: as root, the cluster belongs to the `postgres` user (Debian's) or `nobody`. */
function runAs () {
  if (process.getuid?.() !== 0) return undefined
  for (const user of ['postgres', 'nobody']) {
    const uid = spawnSync('id', ['-u', user], { encoding: 'utf8' })
    const gid = spawnSync('id', ['-g', user], { encoding: 'utf8' })
    if (uid.status === 0 && gid.status === 0) return { user, uid: Number(uid.stdout), gid: Number(gid.stdout) }
  }
  throw new Error('running as root and neither a "postgres" nor a "nobody" user exists to own the test cluster')
}

function run (owner, bin, command, args) {
  const full = join(bin, command)
  const result = owner === undefined
    ? spawnSync(full, args, { encoding: 'utf8' })
    : spawnSync('runuser', ['-u', owner.user, '--', full, ...args], { encoding: 'utf8' })
  if (result.status !== 0) throw new Error(`${command} failed: ${result.stderr || result.stdout || result.error?.message}`)
  return result.stdout
}

/**
 * Starts a cluster and returns its URL and a `stop()` that ends the server and
 * deletes the folder. `fsync: false` for tests (they kill receivers, never the
 * server); the benchmark keeps fsync on, since a durable 2xx is what it measures.
 */
// SIR_PG_EXTRA adds server settings, e.g. "-c shared_preload_libraries=pg_stat_statements" to profile.
export async function startPostgresCluster ({ bin = findPostgresBin(), fsync = false } = {}) {
  if (bin === undefined) throw new Error('no PostgreSQL binaries (apt-get install postgresql)')
  const owner = runAs()
  const dir = mkdtempSync(join(tmpdir(), 'sir-pg-'))
  if (owner !== undefined) chownSync(dir, owner.uid, owner.gid)
  const data = join(dir, 'data')
  const port = await freePort()
  let started = false
  const stop = () => {
    if (started) {
      started = false
      try { run(owner, bin, 'pg_ctl', ['stop', '-D', data, '-m', 'immediate', '-w']) } catch { /* already gone */ }
    }
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    run(owner, bin, 'initdb', ['-D', data, '-U', 'sir', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions'])
    const settings = [`-p ${port}`, `-k ${dir}`, '-c listen_addresses=127.0.0.1', '-c max_connections=300', `-c fsync=${fsync ? 'on' : 'off'}`, ...(process.env.SIR_PG_EXTRA ? [process.env.SIR_PG_EXTRA] : [])]
    run(owner, bin, 'pg_ctl', ['start', '-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', '-o', settings.join(' ')])
    started = true
  } catch (error) {
    stop()
    throw error
  }
  return { url: `postgres://sir@127.0.0.1:${port}/postgres`, port, stop }
}
