import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'

export interface ExampleProcess {
  output: () => string
  /** The webhook URL the process printed, when it serves one. */
  url: string | undefined
  /** The internal port's base URL (/health, /metrics). */
  internal: string
  exit: Promise<number | null>
  kill: (signal: NodeJS.Signals) => void
}

/**
 * Runs `examples/<path>` as a user would (node, the built package, env only) on
 * free ports, and waits for it to print its internal address, and its webhook URL
 * unless `serves` is false (a worker). Killed at teardown if still running.
 */
export async function startExampleProcess (t: Test, path: string, env: Record<string, string>, { serves = true } = {}): Promise<ExampleProcess> {
  const script = fileURLToPath(new URL(`../../examples/${path}`, import.meta.url))
  const child = spawn(process.execPath, [script], {
    env: { ...process.env, PORT: '0', INTERNAL_PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => { resolve(code) }))
  const [url, internal] = await new Promise<[string | undefined, string]>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`${path}: no addresses printed:\n${output}`)) }, 30_000)
    const look = (): void => {
      const webhook = /listening on (http:\/\/\S+)/.exec(output)?.[1]
      const health = /^health: +(http:\/\/\S+)\/health/m.exec(output)?.[1]
      if (health !== undefined && (webhook !== undefined || !serves)) { clearTimeout(timer); resolve([webhook, health]) }
    }
    child.stdout.on('data', look)
    void exit.then((code) => { clearTimeout(timer); reject(new Error(`${path} exited (${String(code)}) before listening:\n${output}`)) })
  })
  return { output: () => output, url, internal, exit, kill: (signal) => { child.kill(signal) } }
}

/** Polls until `check` holds, or fails with `what` after `timeoutMs`. */
export async function until (check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}
