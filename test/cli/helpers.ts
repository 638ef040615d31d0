import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { PassThrough, Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { main } from '../../src/cli/program.js'

export const root = fileURLToPath(new URL('../../', import.meta.url))
export const cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url))
const fixtureReceiver = fileURLToPath(new URL('./fixtures/receiver.mjs', import.meta.url))

/** `npm test` builds first (pretest); a test run on its own builds dist when it is missing. */
export function ensureBuilt (): void {
  if (existsSync(cli)) return
  // tsc emits even when another file has a type error, so the exit code is not the test here.
  spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' })
  if (!existsSync(cli)) throw new Error('dist/cli/main.js is missing after npm run build')
}

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

/**
 * Runs the CLI to completion: in this process by default, through the same
 * `main` the binary calls, with its own streams and env (a spawned node costs
 * a second or more on a loaded 2-core runner, and the CLI tests made most of
 * CI's time). `spawned: true` runs the built binary in a child process, for
 * what only a process shows: the exit code the shell sees, the shebang, the
 * process's own env, and everything printed to the process's streams (a
 * driver's own warnings included: in-process, only what the CLI writes through
 * its io is captured). In-process, a run past `timeoutMs` fails the test but
 * cannot be stopped: tap's per-file timeout ends it. Secrets go through env
 * when a test wants them out of argv.
 */
export async function runCli (args: readonly string[], options: CliOptions & { spawned?: boolean } = {}): Promise<CliResult> {
  return options.spawned === true ? await spawnCli(args, options) : await runInProcess(args, options)
}

interface CliOptions { stdin?: string | Buffer, env?: Record<string, string>, timeoutMs?: number }

/** The env a CLI run sees: this process's, no secret unless the test gives one. */
function cliEnv (options: CliOptions): NodeJS.ProcessEnv {
  return { ...process.env, SIR_WEBHOOK_SECRET: '', ...options.env }
}

async function runInProcess (args: readonly string[], options: CliOptions): Promise<CliResult> {
  let stdout = ''
  let stderr = ''
  const collect = (append: (text: string) => void): Writable => new Writable({
    write (chunk: Buffer | string, _encoding, done) { append(chunk.toString()); done() }
  })
  const stdin = new PassThrough()
  stdin.end(options.stdin ?? '')
  const io = {
    stdout: collect((text) => { stdout += text }),
    stderr: collect((text) => { stderr += text }),
    stdin,
    env: cliEnv(options)
  }
  const timeoutMs = options.timeoutMs ?? 60_000
  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(new Error(`sir-webhooks ${args.join(' ')} did not finish within ${timeoutMs} ms; stdout:\n${stdout}\nstderr:\n${stderr}`)) }, timeoutMs)
  })
  try {
    const code = await Promise.race([main(args, io), timedOut])
    return { code, stdout, stderr }
  } finally {
    clearTimeout(timer)
  }
}

async function spawnCli (args: readonly string[], options: CliOptions): Promise<CliResult> {
  return await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], {
      cwd: root,
      env: cliEnv(options),
      stdio: ['pipe', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, options.timeoutMs ?? 60_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
    child.stdin.end(options.stdin ?? '')
  })
}

/** A long-running process that prints lines; the test waits for lines and stops it. */
export interface RunningProcess {
  child: ChildProcess
  lines: string[]
  waitFor (test: (line: string) => boolean, timeoutMs?: number): Promise<string>
  stop (): Promise<number | null>
}

function track (child: ChildProcess): RunningProcess {
  const lines: string[] = []
  const waiters: Array<{ test: (line: string) => boolean, resolve: (line: string) => void, fail: (error: Error) => void }> = []
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  if (child.stdout === null) throw new Error('the child has no stdout')
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(line)
    for (const waiter of [...waiters]) {
      if (waiter.test(line)) {
        waiters.splice(waiters.indexOf(waiter), 1)
        waiter.resolve(line)
      }
    }
  })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => {
    // A process that ends cannot print the line a test waits for: fail now, not at the timeout.
    for (const waiter of waiters.splice(0)) waiter.fail(new Error(`the process exited (${String(code)}) first; stdout:\n${lines.join('\n')}\nstderr:\n${stderr}`))
    resolve(code)
  }))
  return {
    child,
    lines,
    waitFor (test, timeoutMs = 20_000) {
      const seen = lines.find(test)
      if (seen !== undefined) return Promise.resolve(seen)
      if (child.exitCode !== null) return Promise.reject(new Error(`the process had exited (${child.exitCode}); stdout:\n${lines.join('\n')}\nstderr:\n${stderr}`))
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching line within ${timeoutMs} ms; stdout:\n${lines.join('\n')}\nstderr:\n${stderr}`)), timeoutMs)
        waiters.push({
          test,
          resolve: (line) => { clearTimeout(timer); resolve(line) },
          fail: (error) => { clearTimeout(timer); reject(error) }
        })
      })
    },
    async stop () {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      return exited
    }
  }
}

/** `sir-webhooks listen` on a free port; resolves once it prints its URL. */
export async function startListen (args: readonly string[] = [], env: Record<string, string> = {}): Promise<RunningProcess & { url: string }> {
  const child = spawn(process.execPath, [cli, 'listen', '--port', '0', ...args], {
    cwd: root,
    env: { ...process.env, SIR_WEBHOOK_SECRET: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const running = track(child)
  const line = await running.waitFor((text) => text.startsWith('listening on '))
  return { ...running, url: line.slice('listening on '.length).trim() }
}

export interface FixtureOptions {
  secret: string
  maxQueueSize?: number
  concurrency?: number
  handlerDelayMs?: number
  /** Holds back the answer to the first delivery of each event id (after it was accepted). */
  slowFirstAnswerMs?: number
}

/** A receiver process built on the plugin that prints one JSON line per answer and per handled event. */
export async function startFixtureReceiver (options: FixtureOptions): Promise<RunningProcess & { url: string }> {
  const child = spawn(process.execPath, [fixtureReceiver], {
    cwd: root,
    env: { ...process.env, FIXTURE_OPTIONS: JSON.stringify(options) },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const running = track(child)
  const line = await running.waitFor((text) => text.includes('"listening"'))
  return { ...running, url: (JSON.parse(line) as { listening: string }).listening }
}

export interface FixtureLine {
  answer?: { status: number, code: string, id?: string }
  handled?: { id: string, type: string }
}

export function fixtureLines (running: RunningProcess): FixtureLine[] {
  return running.lines.map((line) => JSON.parse(line) as FixtureLine)
}
