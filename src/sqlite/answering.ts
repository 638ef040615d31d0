/**
 * Ids accepted in this process whose answer still waits for the WAL's fsync
 * (log-sync.ts). This process's claims leave them out, so its handlers start
 * after their delivery's 2xx, as when the fsync ran on the event loop: the
 * delivery's span exists for the handler's span to link to, and a delivery
 * answered 503 for a failed fsync has run no handler here. (Another process on
 * the file may still claim such a row: at-least-once allows it, docs/design.md.)
 */
export class AnsweringIds {
  readonly #ids = new Set<string>()

  track (id: string, answered: Promise<unknown>): void {
    this.#ids.add(id)
    const done = (): void => { this.#ids.delete(id) }
    answered.then(done, done)
  }

  /** What this process's claims leave out: the ids it runs, and those waiting for their answer. */
  excluded (running: Set<string>): Iterable<string> {
    return this.#ids.size === 0 ? running : [...running, ...this.#ids]
  }
}
