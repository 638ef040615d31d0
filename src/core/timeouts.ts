/**
 * Waits until `arm`'s wake-up is called or `ms` have passed, whichever comes
 * first. The inboxes' close(): let accepted work finish, but never past the
 * grace period.
 */
export async function wakeOrTimeout (ms: number, arm: (wake: () => void) => void): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined
  await new Promise<void>((resolve) => {
    arm(resolve)
    timer = setTimeout(resolve, ms)
  })
  clearTimeout(timer)
}

/**
 * `work`'s result, or `late()`'s when `ms` pass first. `late` runs once, at the
 * deadline, so it can also tell the still-running work to give up.
 */
export async function withDeadline<T> (work: Promise<T>, ms: number, late: () => T): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const deadline = new Promise<T>((resolve) => { timer = setTimeout(() => { resolve(late()) }, ms) })
  try {
    return await Promise.race([work, deadline])
  } finally {
    clearTimeout(timer)
  }
}

/** True when `work` settles (either way) within `ms`; false when the time ran out first. */
export async function settlesWithin (work: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false
  await wakeOrTimeout(ms, (wake) => {
    const done = (): void => {
      settled = true
      wake()
    }
    work.then(done, done)
  })
  return settled
}
