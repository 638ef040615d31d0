/**
 * One accepted event of an ordering key, as the engine and its store see it.
 * A store may keep more (the memory inbox keeps its queued event with it).
 */
export interface OrderedEventRef {
  readonly id: string
  readonly key: string
  /** The event's `createdAt`, ms since the epoch (its acceptance time where the sender's does not parse). */
  readonly createdAt: number
  /** Acceptance order within the store: breaks ties of `createdAt` (SQLite: rowid; Postgres: a sequence; Redis: INCR). */
  readonly seq: number
  /** When it may run at the earliest: acceptance plus `ordering.holdMs`. */
  readonly notBefore: number
}

/** Why an event may not take its key now. */
export type KeyWait = 'busy' | 'behind' | 'held' | 'blocked'

export type TakeAnswer =
  /** The key is this event's until `release` or `block`; the newest createdAt of the key handled so far. */
  | { readonly taken: true, readonly newestHandledAt: number | undefined }
  /** `busy`: a run of the key is live. `behind`: an older event of the key waits. `held`: its hold ends in `retryInMs`. `blocked`: a dead letter holds the key. */
  | { readonly taken: false, readonly wait: KeyWait, readonly retryInMs?: number }

/** A key held by a dead letter (`onDeadLetter: 'block'`), and the event that holds it. */
export interface BlockedKey {
  key: string
  eventId: string
  /** When it was blocked. */
  since: Date
}

/** What `stats()`, OpenTelemetry and `health()` say of the keys. */
export interface OrderingKeyCounts {
  /** Keys with at least one event waiting for its turn (behind a run, a hold or a block). */
  waiting: number
  /** Keys blocked behind a dead letter. */
  blocked: number
}

/**
 * The questions ordering asks an inbox's store: River's driver shape again, the
 * engine (`engine.ts`) deciding and the store answering. How SQLite, Postgres
 * and BullMQ answer them is in docs/design.md ("Ordering"). Every method may
 * answer synchronously (the memory inbox) or with a promise (a shared store).
 */
export interface OrderingStore {
  /** Where the state lives, for docs and messages: `this process`, `the SQLite file`. */
  readonly scope: string
  /** Puts an accepted event in its key's line; a durable store does it in the accept's own transaction. */
  enqueue (ref: OrderedEventRef): void | Promise<void>
  /**
   * Takes the key for this event when it is the head of its key (the oldest
   * `createdAt`, then the oldest `seq`, of the events of the key not yet
   * finished), its hold is over, no run of the key is live and the key is not
   * blocked. Atomic with respect to every other receiver on the store.
   */
  take (ref: OrderedEventRef, now: number): TakeAnswer | Promise<TakeAnswer>
  /** The event's run ended: the key is free. `handledCreatedAt`, when it was handled to completion: kept as the key's newest handled, if newer. */
  release (ref: OrderedEventRef, handledCreatedAt: number | undefined): void | Promise<void>
  /** The event dead-lettered under `onDeadLetter: 'block'`: the key stays taken, by it, until `unblock`. */
  block (ref: OrderedEventRef, now: number): void | Promise<void>
  /** Moves a blocked key on: the next event of the key may run. False when the key was not blocked. */
  unblock (key: string): boolean | Promise<boolean>
  blocked (): BlockedKey[] | Promise<BlockedKey[]>
  /** Synchronous, read by `stats()` and `health()`: a shared store keeps a copy it refreshes. */
  counts (): OrderingKeyCounts
  /** Stops whatever the store runs in the background. */
  close? (): void | Promise<void>
}
