import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { BrowserContext, BrowserContextOptions } from 'playwright-core'

/**
 * Debian's Chromium for the dashboard's browser tests, driven by playwright-core.
 * In CI (`CI=true`) a missing Chromium fails the test loudly (`.ci/run` installs
 * it); locally the test may skip, with the reason, as the Redis tests do.
 */
export const CHROMIUM = process.env.SIR_CHROMIUM_PATH ?? '/usr/bin/chromium'

const inCI = process.env.CI === 'true' || process.env.CI === '1'

interface Teardown { teardown (fn: () => unknown): void }

export type ChromiumForTests = { context: BrowserContext } | { context: undefined, reason: string }

export async function chromiumForTests (t: Teardown, options: BrowserContextOptions = {}): Promise<ChromiumForTests> {
  if (!existsSync(CHROMIUM)) {
    const reason = `no Chromium at ${CHROMIUM} (apt-get install chromium, or set SIR_CHROMIUM_PATH)`
    if (inCI) throw new Error(`sir-webhooks tests: Chromium is required in CI and there is ${reason}; .ci/run installs it.`)
    return { context: undefined, reason }
  }
  const { chromium } = await import('playwright-core')
  // A fresh profile per test: nothing cached, no credentials from an earlier run.
  const profile = mkdtempSync(join(tmpdir(), 'sir-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: { width: 1200, height: 900 },
    ...options
  })
  t.teardown(async () => {
    await context.close()
    rmSync(profile, { recursive: true, force: true })
  })
  return { context }
}
