// The BullMQ accepts of one event-loop turn share their socket writes to Redis
// (src/bullmq/coalesce-writes.ts): fewer writes, the same commands and replies.
import type { Socket } from 'node:net'
import { randomUUID } from 'node:crypto'
import { Queue, type RedisClient } from 'bullmq'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { coalesceWrites } from '../src/bullmq/coalesce-writes.js'
import { redisForTests } from './helpers/redis.js'

const redis = await redisForTests(t)
if (redis.url === undefined) {
  t.test(`coalesced writes skipped: no Redis (${redis.reason})`, async () => {})
} else {
  const url = redis.url

  /** A connected client whose socket counts the writes it hands to the system. */
  const countingClient = async (t: Test): Promise<{ client: Redis, writes: () => number }> => {
    const client = new Redis(url, { lazyConnect: true })
    t.teardown(() => client.disconnect())
    await client.connect()
    type Write = (...args: unknown[]) => unknown
    const socket = (client as unknown as { stream: Socket & { _write: Write, _writev: Write } }).stream
    let writes = 0
    const write = socket._write.bind(socket)
    const writev = socket._writev.bind(socket)
    // Node hands a socket's data to the system through these two.
    socket._write = (...args) => { writes++; return write(...args) }
    socket._writev = (...args) => { writes++; return writev(...args) }
    return { client, writes: () => writes }
  }

  const fortyCommands = async (client: Redis, prefix: string): Promise<string[]> => {
    await client.mset(...Array.from({ length: 40 }, (_, index) => [`${prefix}:${index}`, `value ${index}`]).flat())
    return await Promise.all(Array.from({ length: 40 }, async (_, index) => await client.get(`${prefix}:${index}`) ?? 'missing'))
  }

  t.test('commands written in one turn leave in one write, each with its own reply', async (t) => {
    const { client, writes } = await countingClient(t)
    const prefix = `coalesce-test:${process.pid}:one`
    t.teardown(async () => { await client.del(...Array.from({ length: 40 }, (_, index) => `${prefix}:${index}`)) })
    await client.mset(...Array.from({ length: 40 }, (_, index) => [`${prefix}:${index}`, `value ${index}`]).flat())
    const before = writes()
    coalesceWrites(client as unknown as RedisClient)
    coalesceWrites(client as unknown as RedisClient) // a second call in the same turn changes nothing
    const replies = await Promise.all(Array.from({ length: 40 }, async (_, index) => await client.get(`${prefix}:${index}`)))
    t.equal(writes() - before, 1, 'forty GETs, one write')
    t.same(replies, Array.from({ length: 40 }, (_, index) => `value ${index}`), 'each reply answers its own command')
    // The next turn is not corked: a command written then goes at once.
    t.equal(await client.get(`${prefix}:0`), 'value 0', 'a later command is answered')
  })

  t.test('without it each command is its own write (what the coalescing saves)', async (t) => {
    const { client, writes } = await countingClient(t)
    const prefix = `coalesce-test:${process.pid}:two`
    t.teardown(async () => { await client.del(...Array.from({ length: 40 }, (_, index) => `${prefix}:${index}`)) })
    const before = writes()
    const replies = await fortyCommands(client, prefix)
    t.ok(writes() - before > 2, `forty GETs in ${writes() - before} writes`)
    t.equal(replies[39], 'value 39')
  })

  t.test('a BullMQ queue\'s client (bullmq wraps ioredis in a proxy) is corked the same way', async (t) => {
    const queue = new Queue(`coalesce-${randomUUID()}`, { connection: { host: new URL(url).hostname, port: Number(new URL(url).port) } })
    t.teardown(async () => { await queue.close() })
    const client = await queue.client
    const socket = (client as unknown as { stream?: Socket }).stream
    t.ok(socket, 'the client shows its socket')
    t.equal(socket?.writableCorked, 0)
    coalesceWrites(client)
    t.equal(socket?.writableCorked, 1, 'corked for this turn')
    await new Promise((resolve) => setImmediate(resolve))
    t.equal(socket?.writableCorked, 0, 'uncorked at the check phase')
  })

  t.test('a client with no socket of its own (Cluster, or between connections) is left alone', async (t) => {
    t.doesNotThrow(() => { coalesceWrites({} as unknown as RedisClient) })
  })
}
