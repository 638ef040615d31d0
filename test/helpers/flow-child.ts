import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'

const script = fileURLToPath(new URL('../fixtures/flow-receiver.ts', import.meta.url))
const loaderArgs = process.execArgv.filter((arg) => arg.includes('@tapjs/typescript'))

/** A receiver process on a SQLite file (test/fixtures/flow-receiver.ts), asked one command at a time. */
export class FlowChild {
  readonly child: ChildProcess
  readonly ready: Promise<void>
  readonly #waiting = new Map<string, (answer: string) => void>()
  #next = 0

  /** `fixture`: another receiver script speaking the same line protocol (test/fixtures/ordering-receiver.ts). */
  constructor (t: Test, env: Record<string, string>, fixture = script) {
    this.child = spawn(process.execPath, [...loaderArgs, fixture], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] })
    const killOnExit = (): void => { this.child.kill('SIGKILL') }
    process.once('exit', killOnExit)
    this.child.once('exit', () => { process.removeListener('exit', killOnExit) })
    t.teardown(async () => { await this.stop() })
    let pending = ''
    this.ready = new Promise((resolve, reject) => {
      this.child.once('exit', (code) => { reject(new Error(`the flow receiver exited (code ${code})`)) })
      this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
        pending += chunk
        const lines = pending.split('\n')
        pending = lines.pop() ?? ''
        for (const line of lines) {
          if (line === 'ready') resolve()
          const space = line.indexOf(' ')
          this.#waiting.get(line.slice(0, space))?.(line.slice(space + 1))
        }
      })
    })
  }

  async ask (command: string): Promise<string> {
    await this.ready
    const n = String(this.#next++)
    return await new Promise((resolve) => {
      this.#waiting.set(n, resolve)
      this.child.stdin?.write(`${n} ${command}\n`)
    })
  }

  /** Closes the receiver gracefully (stdin ends), or kills it. */
  async stop (signal?: NodeJS.Signals): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    const exited = new Promise((resolve) => this.child.once('exit', resolve))
    if (signal === undefined) this.child.stdin?.end()
    else this.child.kill(signal)
    const stuck = setTimeout(() => { this.child.kill('SIGKILL') }, 10_000)
    await exited
    clearTimeout(stuck)
  }
}

export interface Run { kind: 'start' | 'end', id: string, pid: number, at: number }

export function readRuns (file: string): Run[] {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return []
  }
  return text.split('\n').filter((line) => line !== '').map((line) => {
    const [kind, id, pid, at] = line.split(' ')
    return { kind: kind as Run['kind'], id: id as string, pid: Number(pid), at: Number(at) }
  })
}
