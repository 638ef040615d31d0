// CPU pinning shared by the benchmark scripts: the load generator (this process)
// on CPU 0, servers and measured builds on CPU 1. On a 2-core machine, unpinned,
// the two compete for one core and the numbers measure the scheduler.
import { execFileSync } from 'node:child_process'
import os from 'node:os'

export function tasksetAvailable () {
  try {
    execFileSync('taskset', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** True when pinning is possible here (two cores or more, and taskset). */
export function canPin () {
  return os.availableParallelism() >= 2 && tasksetAvailable()
}

/** Pins this process and its threads to CPU 0, where the load generator runs. */
export function pinSelfToLoadCpu () {
  execFileSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' })
}

/**
 * Lets this process and its threads run on every CPU again: what it starts next
 * (a database server for the inbox benchmark) inherits that, not CPU 0.
 */
export function unpinSelf () {
  // os.cpus(), not availableParallelism(): the latter counts only the CPUs this process may use.
  const last = os.cpus().length - 1
  execFileSync('taskset', ['-a', '-p', '-c', `0-${last}`, String(process.pid)], { stdio: 'ignore' })
}

/** The command and arguments that run `node ...args` on CPU 1 when pinned, or as is. */
export function nodeOnServerCpu (pinned, args) {
  return pinned ? ['taskset', ['-c', '1', process.execPath, ...args]] : [process.execPath, args]
}
