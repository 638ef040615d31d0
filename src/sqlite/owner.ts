import { randomBytes } from 'node:crypto'
import { readFileSync, readlinkSync } from 'node:fs'
import { hostname } from 'node:os'
import type { WebhookLogger } from '../core/logger.js'
import type { Statements } from './schema.js'

/**
 * Who holds a lease: `pid:start:instance@host`. The host part is the host name
 * and, on Linux, the PID namespace, so that two containers that share a host
 * name and a volume but not their process table never judge each other's
 * processes. `start` is the process's start time as the kernel counts it (clock
 * ticks since boot, from /proc) where it can be read, else the epoch ms at which
 * Node started: a PID reused by another process has a different start.
 */
export interface Owner {
  pid: number
  start: string
  instance: string
  host: string
}

const OWNER = /^(\d+):([^:@]+):([^:@]+)@(.+)$/

function pidNamespace (): string {
  try {
    return readlinkSync('/proc/self/ns/pid').replace(/^pid:\[(\d+)\]$/, '$1')
  } catch {
    return ''
  }
}

function procStat (pid: number | 'self'): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) may hold spaces and parentheses: count from the last ")".
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  } catch {
    return undefined
  }
}

/** Field 22 of /proc/<pid>/stat, or undefined where there is no /proc or no such process. */
export function kernelStartTime (pid: number | 'self'): string | undefined {
  return procStat(pid)?.[19]
}

const thisHost = (): string => {
  const namespace = pidNamespace()
  return namespace === '' ? hostname() : `${hostname()}#${namespace}`
}

const thisStart = kernelStartTime('self') ?? `t${Math.round(performance.timeOrigin)}`

/** A new owner id for one inbox of this process. */
export function newOwner (): string {
  return `${process.pid}:${thisStart}:${randomBytes(6).toString('hex')}@${thisHost()}`
}

export function parseOwner (owner: string): Owner | undefined {
  const match = OWNER.exec(owner)
  if (match === null) return undefined
  return { pid: Number(match[1]), start: match[2]!, instance: match[3]!, host: match[4]! }
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * True when the owner is a process on this host that no longer runs: its PID is
 * gone, or now belongs to a process that started at another time (a restarted
 * container is PID 1 again). Owners on other hosts, and ids of an older format,
 * are never judged dead: their leases run out as before.
 */
export function isDeadOwnerOnThisHost (owner: string): boolean {
  const parsed = parseOwner(owner)
  if (parsed === undefined || parsed.host !== thisHost()) return false
  if (parsed.pid === process.pid) return parsed.start !== thisStart
  if (!isAlive(parsed.pid)) return true
  const stat = procStat(parsed.pid)
  // A zombie has exited; its parent has not yet collected it.
  if (stat?.[0] === 'Z') return true
  const start = parsed.start.startsWith('t') ? undefined : stat?.[19]
  return start !== undefined && start !== parsed.start
}

/**
 * Frees, in the open transaction, what stopped processes of this host held:
 * their events (attempts stay counted) and their handlers' concurrency slots.
 * Answers how many events it freed.
 */
export function releaseDeadOwners (sql: Statements, now: number): number {
  let events = 0
  for (const owner of sql.leaseOwners.all({ now })) {
    if (isDeadOwnerOnThisHost(owner)) events += sql.releaseOwner.run({ owner }).changes
  }
  for (const owner of sql.flow.slotOwners.all()) {
    if (isDeadOwnerOnThisHost(owner)) sql.flow.releaseOwnerSlots.run({ owner })
  }
  return events
}

/**
 * Leases held by processes of this host that are gone (a crash, a restarted
 * container) are freed, so their events run now rather than after `leaseMs`.
 * Leases of other hosts are left to expire: whether those processes live cannot
 * be told from here. `release` runs `releaseDeadOwners` in a write.
 */
export async function reclaimFromDeadOwners (release: () => Promise<number>, logger: WebhookLogger | undefined): Promise<void> {
  try {
    const freed = await release()
    if (freed > 0) logger?.info({ events: freed }, 'took back the events of a stopped process on this host without waiting for their lease')
  } catch (error) {
    logger?.error({ err: error }, 'the SQLite inbox could not take back the events of stopped processes; they run once their lease expires')
  }
}
