import type { DashboardInbox } from './options.js'
import { redriveAllConfirmPage, purgeConfirmPage } from './pages/dead-letters.js'
import type { PageContext } from './pages/layout.js'
import { page, redirect, text, type DashboardResponse } from './responses.js'

export const ACTIONS = ['redrive', 'redrive-all', 'purge', 'pause', 'resume'] as const
export type Action = typeof ACTIONS[number]
/** The actions that change the inbox's events; pause and resume change flow control (flow-control.ts). */
export type InboxAction = Exclude<Action, 'pause' | 'resume'>

/** The inbox method each action needs: without it, the action is neither shown nor run. */
export const NEEDS: Record<InboxAction, 'redrive' | 'purge'> = { redrive: 'redrive', 'redrive-all': 'redrive', purge: 'purge' }

/**
 * Runs an action whose request has passed every check (access, read-only,
 * origin, token). The ones that change many events ask first: without
 * `confirm=yes` they answer a page saying what would happen.
 */
export async function runAction (action: InboxAction, form: URLSearchParams, inbox: DashboardInbox, context: PageContext): Promise<DashboardResponse> {
  const { base } = context
  switch (action) {
    case 'redrive': {
      const id = form.get('id') ?? ''
      if (id === '') return text(400, 'which event? the form needs an id')
      if (await inbox.redrive?.(id) !== true) return text(409, `no dead event with id ${JSON.stringify(id)}: re-driven or purged already?`)
      return redirect(`${base}/events?q=${encodeURIComponent(id)}&done=redriven`)
    }
    case 'redrive-all': {
      if (form.get('confirm') !== 'yes') {
        const counted = await inbox.counts?.()
        return page(redriveAllConfirmPage(context, counted?.dead))
      }
      const { redriven, skipped } = await redriveAll(inbox)
      return redirect(`${base}/dead?redriven=${redriven}&skipped=${skipped}`)
    }
    case 'purge': {
      const before = new Date(form.get('before') ?? '')
      if (Number.isNaN(before.getTime())) return text(400, 'the purge needs a date: "before" must be an ISO 8601 date')
      if (form.get('confirm') !== 'yes') return page(purgeConfirmPage(context, before))
      const result = await inbox.purge?.({ before })
      return redirect(`${base}/dead?purged=1&done=${result?.done ?? 0}&dead=${result?.dead ?? 0}`)
    }
  }
}

/** Every dead event, page by page, until a page brings nothing new (as `sir-webhooks inbox redrive --all`). */
async function redriveAll (inbox: DashboardInbox): Promise<{ redriven: number, skipped: number }> {
  const seen = new Set<string>()
  let redriven = 0
  let skipped = 0
  for (;;) {
    const batch = (await inbox.deadLetters?.({ limit: 100 }) ?? []).filter(({ id }) => !seen.has(id))
    if (batch.length === 0) return { redriven, skipped }
    for (const { id } of batch) {
      seen.add(id)
      // false: re-driven or purged by someone else since the page was read.
      if (await inbox.redrive?.(id) === true) redriven++
      else skipped++
    }
  }
}
