// The calls of one event-loop turn gathered into one Redis call.

/** At most this many calls share one send: what the inbox's batches use. */
export const TURN_BATCH_MAX = 500

interface Batch<Item, Reply> {
  items: Item[]
  replies: Promise<readonly Reply[]>
}

/**
 * Gathers the calls made in one turn of the event loop, per owner (a Redis
 * client) and scope (a queue's key prefix: one script's keys must share a
 * Cluster slot), and sends each gathering as one call at the turn's check
 * phase, when a corked socket (coalesce-writes.ts) would have sent them
 * anyway. In a burst, the requests read in one poll phase then cost Redis and
 * the client one command, not one each. At most `max` calls share one: a
 * larger turn sends several, so that no one script holds Redis long. Should
 * the call fail, or answer other than one reply per call, every caller in it
 * gets an error.
 */
export class TurnBatches<Item, Reply> {
  readonly #open = new WeakMap<object, Map<string, Batch<Item, Reply>>>()
  readonly #max: number
  readonly #send: (owner: object, items: readonly Item[]) => Promise<readonly Reply[]>

  /** `send` answers one reply per item, in order. */
  constructor (max: number, send: (owner: object, items: readonly Item[]) => Promise<readonly Reply[]>) {
    this.#max = max
    this.#send = send
  }

  async add (owner: object, scope: string, item: Item): Promise<Reply> {
    let open = this.#open.get(owner)
    if (open === undefined) this.#open.set(owner, (open = new Map()))
    const scopes = open
    let batch = scopes.get(scope)
    if (batch === undefined) {
      const items: Item[] = []
      const replies = new Promise<void>((resolve) => { setImmediate(resolve) }).then(async () => {
        if (scopes.get(scope)?.items === items) scopes.delete(scope)
        const replies = await this.#send(owner, items)
        // A reply missing would read as an answer (undefined): every caller gets an error instead.
        if (replies.length !== items.length) throw new Error(`a batched Redis call answered ${replies.length} replies for ${items.length} calls`)
        return replies
      })
      batch = { items, replies }
      scopes.set(scope, batch)
    }
    const index = batch.items.push(item) - 1
    if (batch.items.length >= this.#max) scopes.delete(scope)
    return (await batch.replies)[index] as Reply
  }
}
