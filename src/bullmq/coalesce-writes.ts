// The accepts of one turn of the event loop share socket writes to Redis.
import type { Writable } from 'node:stream'
import type { RedisClient } from 'bullmq'

const corked = new WeakSet<Writable>()

/**
 * Corks the client's socket until the event loop's check phase, so every
 * command written on it meanwhile leaves in one write. In a burst, the requests
 * read in one poll phase each write their dedupe read, their add, their mark and
 * their promotion: one system call each, about a fifth of a BullMQ receiver's
 * CPU, where one per phase does. Only the writes are joined: ioredis still
 * sends each command as before and matches each reply to it, so nothing about
 * what Redis runs, or in what order, changes (ioredis's own auto-pipelining,
 * which does change it, breaks BullMQ's transactions). A Cluster client has no
 * one socket, and a client between connections none: both are left alone.
 */
export function coalesceWrites (client: RedisClient): void {
  const stream = (client as { stream?: Writable }).stream
  if (stream === undefined || typeof stream.cork !== 'function' || corked.has(stream)) return
  corked.add(stream)
  stream.cork()
  setImmediate(() => {
    corked.delete(stream)
    stream.uncork()
  })
}
