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
