/**
 * The runner's one claim at a time: whether a claim is in flight and has run in
 * its transaction yet, whether another was asked for since it ran, and whether
 * it ran after the latest key an outcome released (ordering: an outcome frees
 * its key in its own transaction, and the key's next event is claimed by the
 * first claim after it).
 */
export class ClaimTurns {
  #inFlight = false
  #ran = false
  #again = false
  #releases = 0
  #releasesSeen = 0

  /** Asked for a claim: true when one may be sent now; false when one is in flight (it claims again after, if it already ran). */
  begin (): boolean {
    if (!this.#inFlight) return true
    // A claim still waiting for its transaction counts free slots when it runs.
    if (this.#ran) this.#again = true
    return false
  }

  sent (): void {
    this.#inFlight = true
    this.#ran = false
  }

  /** In the claim's transaction. */
  ran (): void {
    this.#ran = true
    this.#releasesSeen = this.#releases
  }

  /** The claim settled: whether to claim again at once. */
  ended (): boolean {
    this.#inFlight = false
    const again = this.#again
    this.#again = false
    return again
  }

  /** In an outcome's transaction that released a key: its number, for `unseen`. */
  released (): number {
    return ++this.#releases
  }

  /** No claim has run since release number `release`: the key's next event is claimed by nobody yet. */
  unseen (release: number): boolean {
    return release > this.#releasesSeen
  }
}
