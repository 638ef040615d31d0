// Installs the runtimes the suite runs on, from npm, outside the project's own
// dependencies: `npm ci` stays lean, and the runtimes' binaries (bun, deno,
// workerd, node 22 and 24, several hundred MB) are fetched once per machine and
// kept in a cache folder across runs. Exact versions, so a cached install is
// reused only while it is the one asked for.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'

// One folder per group: two versions of the `node` package cannot share one.
export const runtimeGroups = {
  edge: { bun: '1.4.5', deno: '2.9.6', miniflare: '4.20260426.0', esbuild: '0.28.2' },
  node22: { node: '22.23.3' },
  node24: { node: '24.21.0' }
}

export const cacheRoot = process.env.SIR_RUNTIMES_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'sir-webhooks-runtimes')

/** Installs what is missing (in parallel) and returns the paths the suite needs. Rejects when an install fails. */
export async function installRuntimes (log = (line) => { console.log(line) }) {
  await Promise.all(Object.entries(runtimeGroups).map(([group, dependencies]) => installGroup(group, dependencies, log)))
  const bin = (group, name) => join(cacheRoot, group, 'node_modules', '.bin', name)
  return {
    bun: bin('edge', 'bun'),
    deno: bin('edge', 'deno'),
    esbuild: join(cacheRoot, 'edge', 'node_modules', 'esbuild', 'lib', 'main.js'),
    miniflare: join(cacheRoot, 'edge', 'node_modules', 'miniflare', 'dist', 'src', 'index.js'),
    node22: bin('node22', 'node'),
    node24: bin('node24', 'node')
  }
}

async function installGroup (group, dependencies, log) {
  const folder = join(cacheRoot, group)
  const marker = join(folder, '.installed.json')
  const wanted = JSON.stringify(dependencies)
  if (existsSync(marker) && await readFile(marker, 'utf8') === wanted) {
    log(`# ${group}: cached in ${folder}`)
    return
  }
  const started = Date.now()
  // Installed beside the cache entry and moved in whole, so a run that is killed
  // or runs at the same time never leaves or sees a half-installed folder.
  const staging = `${folder}.installing-${process.pid}`
  await rm(staging, { recursive: true, force: true })
  await mkdir(staging, { recursive: true })
  try {
    await writeFile(join(staging, 'package.json'), JSON.stringify({ private: true, dependencies }, null, 2))
    await npm(['install', '--no-audit', '--no-fund', '--prefix', staging], group)
    await writeFile(join(staging, '.installed.json'), wanted)
    await rm(folder, { recursive: true, force: true })
    await rename(staging, folder)
  } finally {
    await rm(staging, { recursive: true, force: true })
  }
  log(`# ${group}: installed ${Object.entries(dependencies).map(([name, version]) => `${name}@${version}`).join(', ')} in ${Math.round((Date.now() - started) / 1000)} s`)
}

function npm (args, group) {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (chunk) => { output += chunk })
    child.stderr.on('data', (chunk) => { output += chunk })
    child.on('error', reject)
    child.on('close', (code) => {
      if (code === 0) resolve()
      else reject(new Error(`npm ${args.join(' ')} failed for the ${group} runtimes (exit ${code}):\n${output}`))
    })
  })
}
