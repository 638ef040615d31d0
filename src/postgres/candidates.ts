/**
 * Accepted ids kept at most. Past it (a process whose handlers cannot keep up,
 * or that has none yet) new ids are not kept: the scan finds them in the table.
 */
const MAX_ACCEPTED = 10_000

/**
 * The ids a worker tries to claim next, so that a claim is a primary-key lookup
 * and not a walk of the due-events index. A queue table's index fills with the
 * entries of finished events until VACUUM removes them, and a walk from its
 * oldest end reads them all again: done once per event under load, that walk
 * cost Postgres about 1 ms of CPU per event and held the inbox near 1 100
 * events a second.
 *
 * Ids come from this process's own accepts (known the moment their batch
 * commits) and from a scan of the table without locks, done when `scanDue`
 * says so. A candidate is only a hint: the claim takes the row lock and checks
 * that the event is still pending and due, so an id another worker or instance
 * took meanwhile is skipped.
 */
export class Candidates {
  /** Claimed, not run (a batch ran out of time): first in line, and no scan replaces them. */
  #putBack: string[] = []
  /** From the last scan, oldest due first: taken before the accepts', which have waited less. */
  #scanned: string[] = []
  #next = 0
  /** From this process's accepts, in commit order. A Set: a scan may list one too. */
  readonly #accepted = new Set<string>()
  /** A scan was asked for since the last one started. */
  #scanWanted = true
  /** The last scan filled its limit: more may be due behind it, older than the accepts. */
  #scanFull = false
  /** Of the last scan's ids tried here, how many were claimed (see `#scanWasBacklog`). */
  #scanIds: ReadonlySet<string> = new Set()
  #scanTried = 0
  #scanClaimed = 0
  /**
   * Accepts were not kept, the list being full: they are newer than every id on
   * it, so the table is scanned for them once the list has run dry, not before.
   */
  #overflowed = false
  /** Another instance accepted events: scanned for once this process's own are taken. */
  #othersAccepted = false
  /** The two flags above as a scan in flight found them: back if it could not list everything. */
  #flagsAtScan = { overflowed: false, othersAccepted: false }

  /** Ids committed by this process's accepts: due at once. */
  addAccepted (ids: Iterable<string>): void {
    for (const id of ids) {
      if (this.#accepted.size >= MAX_ACCEPTED) {
        this.#overflowed = true
        return
      }
      this.#accepted.add(id)
    }
  }

  /** A scan's ids, oldest due first, of at most `limit`; those running here are left out. */
  addScanned (ids: readonly string[], limit: number, running: ReadonlySet<string>): void {
    this.#scanned = ids.filter((id) => !running.has(id))
    this.#next = 0
    this.#scanIds = new Set(this.#scanned)
    this.#scanTried = 0
    this.#scanClaimed = 0
    // A full scan whose last id is one of this process's accepts listed every id
    // due before it: what lies behind is no older than the accepts still to take.
    // Under a steady load the backlog is larger than a scan, and every scan full.
    const last = ids.at(-1)
    this.#scanFull = ids.length >= limit && last !== undefined && !this.#accepted.has(last)
    // A scan that filled its limit may have stopped short of what the flags stood for.
    if (ids.length >= limit) {
      this.#overflowed ||= this.#flagsAtScan.overflowed
      this.#othersAccepted ||= this.#flagsAtScan.othersAccepted
    }
  }

  /** What a claim of `asked` got: the ids it locked. */
  claimed (asked: readonly string[], got: ReadonlySet<string>): void {
    for (const id of asked) {
      if (!this.#scanIds.has(id)) continue
      this.#scanTried++
      if (got.has(id)) this.#scanClaimed++
    }
  }

  /** Claimed but not run (a batch ran out of time): first in line again. */
  putBack (ids: readonly string[]): void {
    this.#putBack.unshift(...ids)
  }

  /** Ids left to try (a scan's and the accepts' may overlap). */
  get size (): number {
    return this.#putBack.length + this.#scanned.length - this.#next + this.#accepted.size
  }

  /** The next id to try. */
  take (): string | undefined {
    const putBack = this.#putBack.shift()
    if (putBack !== undefined) return putBack
    if (this.#next < this.#scanned.length) {
      const id = this.#scanned[this.#next++]!
      this.#accepted.delete(id)
      return id
    }
    // A full scan used up: what was due behind it goes before newer accepts, so scan first.
    if (this.#scanFull && this.#scanWasBacklog) return undefined
    for (const id of this.#accepted) {
      this.#accepted.delete(id)
      return id
    }
    return undefined
  }

  /**
   * Whether at least half of the last scan's ids tried here were claimed. When
   * not, the scan listed events other instances hold (their claims' row locks)
   * or just finished, which a lock-free scan cannot tell from a backlog: another
   * scan would list the same rows again, and this process's own accepts would
   * wait behind them for as long as those handlers run.
   */
  get #scanWasBacklog (): boolean {
    return this.#scanClaimed * 2 >= this.#scanTried
  }

  /** Something may be due that this process did not accept: the next search scans the table. */
  wantScan (): void {
    this.#scanWanted = true
  }

  /** A scan was asked for after the last one started: a search that waited on that one scans again. */
  get scanRequested (): boolean {
    return this.#scanWanted
  }

  /**
   * Another instance committed accepts. They are scanned for once this process
   * has taken its own, not before: a busy instance that scanned at each of the
   * other's wake-ups listed events the other was about to run, and the two
   * spent Postgres's time scanning and racing for the same rows.
   */
  othersAccepted (): void {
    this.#othersAccepted = true
  }

  /**
   * Whether a search should scan before taking: asked for, or a full scan used up
   * (what was due behind it goes before newer accepts), or the list run dry
   * after another instance said it accepted or accepts overflowed it. A dry list
   * alone is not a reason: whatever this process has not been told of (a retry
   * falling due, an event a crashed process held) comes with a request for a
   * scan, or with the next poll. Scanning each time the workers caught up cost
   * Postgres a walk of the due-events index many times a second.
   */
  get scanDue (): boolean {
    if (this.#scanWanted) return true
    if (this.#putBack.length > 0 || this.#next < this.#scanned.length) return false
    if (this.#scanFull && this.#scanWasBacklog) return true
    return (this.#overflowed || this.#othersAccepted) && this.#accepted.size === 0
  }

  /** A scan is starting: a request made from now on wants another. */
  scanStarted (): void {
    this.#scanWanted = false
    this.#flagsAtScan = { overflowed: this.#overflowed, othersAccepted: this.#othersAccepted }
    this.#overflowed = false
    this.#othersAccepted = false
  }
}
