// Our own Lua scripts on a BullMQ client, each set defined once per client.
import type { RedisClient } from 'bullmq'

/** A script as ioredis defines it; without `numberOfKeys`, its first argument says how many keys follow (a turn's batch). */
export interface ScriptDefinition {
  lua: string
  numberOfKeys?: number
  readOnly?: boolean
}

/** The clients each set (a module's constant) is defined on. */
const definedOn = new WeakMap<Readonly<Record<string, ScriptDefinition>>, WeakSet<RedisClient>>()

/**
 * Defines a set of named scripts on the client unless this set already is:
 * ioredis then sends each by its SHA, loading it again after a NOSCRIPT (a
 * Redis restarted or flushed). Called before each use, on whichever client
 * BullMQ hands over, so `scripts` is a constant: the check is two lookups.
 */
export function defineScripts (client: RedisClient, scripts: Readonly<Record<string, ScriptDefinition>>): void {
  let clients = definedOn.get(scripts)
  if (clients === undefined) definedOn.set(scripts, (clients = new WeakSet()))
  if (clients.has(client)) return
  // bullmq's type of defineCommand requires numberOfKeys; ioredis does not.
  for (const [name, script] of Object.entries(scripts)) client.defineCommand(name, script as { lua: string, numberOfKeys: number })
  clients.add(client)
}
