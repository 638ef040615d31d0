import { readFileSync } from 'node:fs'
import { SECRET, event, post, sleep, until } from '../inbox-contract/support.js'

/** What the sender saw for each id, as the platform would have. */
export class SenderLog {
  /** Answered 2xx at least once: must be handled. */
  readonly acked = new Set<string>()
  /** Answered something else, and never 2xx: must never be handled. */
  readonly refused = new Set<string>()
  /** No answer at all (the process died): the platform retries these. */
  readonly unanswered = new Set<string>()
  answers = 0

  /** Posts one event; a connection error is an unanswered delivery, not a failure of the test. */
  async send (url: string, id: string, secret = SECRET): Promise<number | undefined> {
    let status: number | undefined
    try {
      status = await post(url, event(id), secret)
    } catch {
      status = undefined
    }
    this.answers++
    if (status === undefined) {
      if (!this.acked.has(id)) this.unanswered.add(id)
    } else if (status >= 200 && status < 300) {
      this.acked.add(id)
      this.refused.delete(id)
      this.unanswered.delete(id)
    } else if (!this.acked.has(id)) {
      this.refused.add(id)
      this.unanswered.delete(id)
    }
    return status
  }
}

export interface HandledLine { id: string, attempt: number, pid: number }

export function readHandled (file: string): HandledLine[] {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return []
  }
  return text.split('\n').filter((line) => line.length > 0).map((line) => {
    const [id = '', attempt = '0', pid = '0'] = line.split(' ')
    return { id, attempt: Number(attempt), pid: Number(pid) }
  })
}

/** Runs `work` over `items` with `width` of them in flight, until done or `stop()` says so. */
export async function inParallel<T> (items: readonly T[], width: number, work: (item: T) => Promise<void>, stop: () => boolean = () => false): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length && !stop()) {
      const item = items[next++] as T
      await work(item)
    }
  }))
}

/** Resends until the receiver answers 2xx, as the platform's retries would. */
export async function sendUntilAcked (log: SenderLog, url: string, id: string, tries = 60): Promise<void> {
  for (let attempt = 0; attempt < tries && !log.acked.has(id); attempt++) {
    if (attempt > 0) await sleep(100)
    await log.send(url, id)
  }
}

/**
 * Resends, after a crash, as the platform would: every delivery that got no
 * answer, and half of those answered 503; the other half are given up on, so
 * they prove a refused event is never handled. Forged deliveries go out forged
 * again. Returns the ids given up on.
 */
export async function resendLikeThePlatform (log: SenderLog, url: string, forgedSecret: string): Promise<Set<string>> {
  const refusedOnce = [...log.refused].filter((id) => !id.startsWith('forged'))
  const abandoned = new Set(refusedOnce.filter((_, index) => index % 2 === 0))
  const retried = [...log.unanswered, ...refusedOnce.filter((id) => !abandoned.has(id))]
  await inParallel(retried, 4, async (id) => {
    if (id.startsWith('forged')) await log.send(url, id, forgedSecret)
    else await sendUntilAcked(log, url, id)
  })
  return abandoned
}

/**
 * Waits until every acknowledged id appears in the handled file, for at most
 * `timeoutMs`: no less than the longest an inbox may take, after a kill, to run an
 * event it acknowledged (BullMQ: a hold, see test/bullmq-crash.test.ts).
 */
export async function untilEveryAckedIsHandled (log: SenderLog, handledFile: string, timeoutMs = 25_000): Promise<void> {
  await until(() => {
    const handled = new Set(readHandled(handledFile).map((line) => line.id))
    return [...log.acked].every((id) => handled.has(id))
  }, 'every acknowledged event to be handled', timeoutMs)
}

