import type { EventOutcome } from '../../core/outcome.js'
import { html } from '../escape.js'
import { actionForm, formatDate, layout, missingFeature, type PageContext } from './layout.js'

export interface DeadLettersView {
  /** Undefined where the inbox keeps no dead letters. */
  dead: EventOutcome[] | undefined
  limit: number
  canRedrive: boolean
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
