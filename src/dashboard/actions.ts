import type { ReplayFilter } from '../core/replay-filter.js'
import { moment } from './event-listing.js'
import type { DashboardInbox } from './options.js'
import { redriveAllConfirmPage, purgeConfirmPage, redriveFilteredConfirmPage } from './pages/dead-letters.js'
import type { PageContext } from './pages/layout.js'
import { page, redirect, text, type DashboardResponse } from './responses.js'

export const ACTIONS = ['redrive', 'redrive-all', 'redrive-filtered', 'purge', 'pause', 'resume'] as const
export type Action = typeof ACTIONS[number]
/** The actions that change the inbox's events; pause and resume change flow control (flow-control.ts). */
export type InboxAction = Exclude<Action, 'pause' | 'resume'>

/** The inbox methods each action needs: without them, the action is neither shown nor run. */
export const NEEDS: Record<InboxAction, ReadonlyArray<'redrive' | 'purge' | 'countMatching' | 'requeue'>> = {
  redrive: ['redrive'],
  'redrive-all': ['redrive'],
  // The count first, then the re-drive: a store with only one of them cannot do both steps.
  'redrive-filtered': ['countMatching', 'requeue'],
  purge: ['purge']
}

/** The dead letters a filtered re-drive selects, from its form; or what is wrong with the form. */
export function deadFilter (form: URLSearchParams): ReplayFilter | string {
  const filter: ReplayFilter = { state: 'dead' }
  const type = (form.get('type') ?? '').trim()
  const handler = (form.get('handler') ?? '').trim()
  if (type !== '') filter.type = type
  if (handler !== '') filter.handler = handler
  for (const name of ['since', 'until'] as const) {
    const given = (form.get(name) ?? '').trim()
    const value = moment(given)
    if (value !== undefined) filter[name] = value
    else if (given !== '') return `"${given}" is not a date and time ("${name}")`
  }
  if (filter.since !== undefined && filter.until !== undefined && filter.since >= filter.until) return '"since" must be before "until", or nothing can match'
  return filter
}

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
    case 'redrive-filtered': {
      const filter = deadFilter(form)
      if (typeof filter === 'string') return text(400, `the re-drive's filter: ${filter}`)
      if (form.get('confirm') !== 'yes') return page(redriveFilteredConfirmPage(context, filter, await inbox.countMatching!(filter)))
      const max = Number(form.get('max'))
      if (!Number.isSafeInteger(max) || max < 1) return text(400, 'the re-drive\'s confirmation must carry the count it confirmed ("max")')
      const redriven = await inbox.requeue!(filter, { max })
      return redirect(`${base}/dead?redriven=${redriven}`)
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
