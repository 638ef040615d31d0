import type { EventOutcome } from '../../core/outcome.js'
import type { ReplayFilter } from '../../core/replay-filter.js'
import { html, type SafeHtml } from '../escape.js'
import { actionForm, formatDate, layout, missingFeature, type PageContext } from './layout.js'

export interface DeadLettersView {
  /** Undefined where the inbox keeps no dead letters. */
  dead: EventOutcome[] | undefined
  limit: number
  canRedrive: boolean
  /** Whether the store can count and re-drive a filtered set (`countMatching`, `requeue`); the form is hidden in read-only mode anyway. */
  canRedriveFiltered: boolean
  canPurge: boolean
  notice?: string
}

export function deadLettersPage (context: PageContext, view: DeadLettersView): string {
  if (view.dead === undefined) {
    return layout(context, '/dead', 'Dead letters', missingFeature(
      'This inbox keeps no dead letters (the in-memory inbox hands them to onDeadLetter and forgets them). ' +
      'Use a durable inbox (SQLite, Postgres, BullMQ) to list and re-drive them here.'))
  }
  const rows = view.dead.map((outcome) => html`<tr>
<td><a href="${context.base}/events?q=${encodeURIComponent(outcome.id)}">${outcome.id}</a></td>
<td>${outcome.type}</td><td>${outcome.attempts}</td><td><code>${outcome.lastError ?? ''}</code></td>
<td>${formatDate(outcome.finishedAt)}</td>
<td>${view.canRedrive ? actionForm(context, 'redrive', { id: outcome.id }, 'Re-drive') : ''}</td>
</tr>`)
  const body = html`${view.notice === undefined ? '' : html`<p class="notice" role="status">${view.notice}</p>`}
${view.dead.length === 0
    ? html`<p>No dead letters.</p>`
    : html`<table class="dead"><thead><tr><th>id</th><th>type</th><th>attempts</th><th>last error</th><th>dead since</th><th></th></tr></thead>
<tbody>${rows}</tbody></table>
${view.canRedrive ? actionForm(context, 'redrive-all', {}, 'Re-drive every dead letter…') : ''}
${view.dead.length >= view.limit ? html`<p class="note">The oldest ${view.limit} are shown.</p>` : ''}`}
${view.dead.length === 0 || context.readOnly ? '' : filteredRedrive(context, view.canRedriveFiltered)}
${view.canPurge && !context.readOnly
    ? html`<section class="purge"><h2>Purge finished events</h2>
<p>Deletes done and dead events that finished before a date. Pending events are never purged. You will be asked to confirm.</p>
<form method="post" action="${context.base}/actions/purge" class="action">
<label>Finished before <input type="date" name="before" required></label>
<input type="hidden" name="token" value="${context.token('purge')}">
<button type="submit">Purge…</button>
</form></section>`
    : ''}`
  return layout(context, '/dead', 'Dead letters', body)
}

/** Re-drive the dead letters a filter selects: the count is shown on the next page, before anything is queued. */
function filteredRedrive (context: PageContext, canRedriveFiltered: boolean): SafeHtml {
  if (!canRedriveFiltered) {
    return html`<section class="redrive-filtered"><h2>Re-drive by filter</h2>${missingFeature('This store cannot count and re-drive dead letters by filter; re-drive them one by one or all at once.')}</section>`
  }
  return html`<section class="redrive-filtered"><h2>Re-drive by filter</h2>
<p>Dead letters of one type, one failed handler or a time received (UTC); every field is optional. Their count is shown before anything is queued.</p>
<form method="post" action="${context.base}/actions/redrive-filtered" class="filters">
<label>Type <input name="type" placeholder="any" autocomplete="off"></label>
<label>Handler <input name="handler" placeholder="any" autocomplete="off"></label>
<label>Received since <input type="datetime-local" name="since"></label>
<label>before <input type="datetime-local" name="until"></label>
<input type="hidden" name="token" value="${context.token('redrive-filtered')}">
<button type="submit">Count and re-drive…</button>
</form></section>`
}

/** In words, what a filter selects. */
function describeFilter (filter: ReplayFilter): string {
  const parts = [
    filter.type === undefined ? undefined : `of type ${filter.type}`,
    filter.handler === undefined ? undefined : `failed by handler ${filter.handler}`,
    filter.since === undefined ? undefined : `received since ${filter.since.toISOString()}`,
    filter.until === undefined ? undefined : `received before ${filter.until.toISOString()}`
  ].filter((part): part is string => part !== undefined)
  return parts.length === 0 ? 'every dead event' : `dead events ${parts.join(', ')}`
}

/** The confirmation step of a filtered re-drive: how many it selects, and the same filter with `confirm=yes`. */
export function redriveFilteredConfirmPage (context: PageContext, filter: ReplayFilter, count: number): string {
  // The count shown is the most the confirmation queues (`max`): later matches are not touched unconfirmed.
  const fields: Record<string, string> = { confirm: 'yes', max: String(count) }
  if (filter.type !== undefined) fields.type = filter.type
  if (filter.handler !== undefined) fields.handler = filter.handler
  if (filter.since !== undefined) fields.since = filter.since.toISOString()
  if (filter.until !== undefined) fields.until = filter.until.toISOString()
  const body = count === 0
    ? html`<p data-field="count">No dead event matches: <span>${describeFilter(filter)}</span>.</p><p><a href="${context.base}/dead">Back</a></p>`
    : html`<p>Queue <strong data-field="count">${count}</strong> <span>${describeFilter(filter)}</span> again, their attempts reset? Their handlers run again.</p>
${actionForm(context, 'redrive-filtered', fields, 'Yes, re-drive them')}
<p><a href="${context.base}/dead">Cancel</a></p>`
  return layout(context, '/dead', 'Confirm the re-drive', body)
}

/** The confirmation step of a purge: the same form again, with `confirm=yes`. */
export function purgeConfirmPage (context: PageContext, before: Date): string {
  const body = html`<p>Delete every done and dead event that finished before <strong>${before.toISOString()}</strong>? This cannot be undone.</p>
${actionForm(context, 'purge', { before: before.toISOString(), confirm: 'yes' }, 'Yes, purge them', 'danger')}
<p><a href="${context.base}/dead">Cancel</a></p>`
  return layout(context, '/dead', 'Confirm the purge', body)
}

/** The confirmation step of re-driving every dead letter, with their count first. */
export function redriveAllConfirmPage (context: PageContext, dead: number | undefined): string {
  const body = html`<p>Queue <strong>${dead === undefined ? 'every' : `all ${dead}`}</strong> dead event(s) again, their attempts reset? Their handlers run again.</p>
${actionForm(context, 'redrive-all', { confirm: 'yes' }, 'Yes, re-drive them')}
<p><a href="${context.base}/dead">Cancel</a></p>`
  return layout(context, '/dead', 'Confirm the re-drive', body)
}
