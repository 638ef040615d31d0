import type { ResolvedLimits } from '../../core/flow/limits.js'
import { html, type SafeHtml } from '../escape.js'
import type { HandlerRow, HandlersData } from '../flow-control.js'
import { actionForm, layout, missingFeature, type PageContext } from './layout.js'

export interface HandlersView extends HandlersData {
  /** Whether the pause and resume buttons are shown (flow control, not read-only). */
  canPause: boolean
  /** Whether each handler links to the Events page filtered by it (the inbox lists events). */
  canList: boolean
  notice?: string
}

function milliseconds (value: number | undefined): string {
  if (value === undefined) return '–'
  return value < 10 ? `${value.toFixed(2)} ms` : value < 1000 ? `${Math.round(value)} ms` : `${(value / 1000).toFixed(2)} s`
}

function pace (limits: ResolvedLimits | undefined): string {
  const parts: string[] = []
  if (limits?.concurrency !== undefined) parts.push(`${limits.concurrency} at once`)
  if (limits?.rate !== undefined) parts.push(`${limits.rate.perSecond}/s, burst ${limits.rate.burst}`)
  return parts.length === 0 ? 'unlimited' : parts.join('; ')
}

function deferrals (row: HandlerRow): string {
  const counted = Object.entries(row.deferred ?? {}).filter(([, count]) => count > 0)
  return counted.length === 0 ? '0' : counted.map(([reason, count]) => `${reason} ${count}`).join(', ')
}

function button (context: PageContext, view: HandlersView, row: HandlerRow): SafeHtml {
  if (!view.canPause) return html``
  // A handler held back only by "pause all" is resumed with it, not on its own.
  if (row.paused && view.pausedAll) return html`<span class="note">paused with all</span>`
  return row.paused
    ? actionForm(context, 'resume', { handler: row.name }, 'Resume')
    : actionForm(context, 'pause', { handler: row.name }, 'Pause')
}

function table (context: PageContext, view: HandlersView): SafeHtml {
  const rows = view.rows.map((row) => html`<tr data-handler="${row.name}">
<td>${view.canList ? html`<a href="${context.base}/events?handler=${encodeURIComponent(row.name)}" title="events this handler failed or was deferred on">${row.name}</a>` : row.name}</td>
${view.figures
    ? html`<td data-field="runs">${row.stats?.runs ?? 0}</td><td data-field="succeeded">${row.stats?.succeeded ?? 0}</td><td data-field="retried">${row.stats?.retried ?? 0}</td><td data-field="failed">${row.stats?.failed ?? 0}</td>
<td data-field="p50">${milliseconds(row.stats?.p50Ms)}</td><td data-field="p99">${milliseconds(row.stats?.p99Ms)}</td><td>${pace(row.stats?.limits)}</td>`
    : ''}
${view.flow === 'none' ? '' : html`<td>${deferrals(row)}</td><td data-field="paused">${row.paused ? 'paused' : 'running'}</td><td>${button(context, view, row)}</td>`}
</tr>`)
  return html`<table class="handlers"><thead><tr><th>handler</th>
${view.figures ? html`<th>runs</th><th>succeeded</th><th>retried</th><th>failed</th><th>p50</th><th>p99</th><th>pace</th>` : ''}
${view.flow === 'none' ? '' : html`<th>deferred</th><th>state</th><th></th>`}</tr></thead>
<tbody>${rows}</tbody></table>`
}

export function handlersPage (context: PageContext, view: HandlersView): string {
  const notes: SafeHtml[] = []
  if (!view.figures) {
    notes.push(missingFeature('No receiver runs in this process (a dashboard on the store alone): runs, failures and durations are counted by each receiver; ' +
      'see its own dashboard or metrics. Shown here: the pause kept in the store.'))
  }
  if (view.flow === 'none') {
    notes.push(missingFeature('This inbox has no flow control, so handlers cannot be paused here (docs/design.md, "Flow control", says which inboxes have it).'))
  }
  const all = view.canPause
    ? html`<p class="pause-all">${view.pausedAll
        ? html`<strong>Every handler is paused.</strong> ${actionForm(context, 'resume', { handler: '' }, 'Resume all')}`
        : actionForm(context, 'pause', { handler: '' }, 'Pause all')}</p>`
    : view.pausedAll ? html`<p><strong>Every handler is paused.</strong></p>` : html``
  // With no receiver here the page cannot list handlers that are not paused: one is paused by name.
  const byName = view.canPause && view.flow === 'store'
    ? html`<form method="post" action="${context.base}/actions/pause" class="action by-name">
<label>Pause the handler named <input name="handler" required autocomplete="off"></label>
<input type="hidden" name="token" value="${context.token('pause')}">
<button type="submit">Pause</button>
</form>`
    : html``
  const body = html`${view.notice === undefined ? '' : html`<p class="notice" role="status">${view.notice}</p>`}
${notes}
${all}
${view.rows.length === 0
    ? html`<p>${view.figures ? 'No handler is registered.' : view.flow === 'none' ? '' : 'No handler is paused.'}</p>`
    : table(context, view)}
${byName}
${view.flow === 'none'
    ? ''
    : html`<p class="note">Pause keeps deliveries coming (verified, stored, answered 2xx); the runs wait, using no attempt, and drain at their pace on resume.
The pause is kept in ${view.scope ?? 'the store'}${view.scope === 'Redis' ? ': every receiver on the queue sees it' : ''}.</p>`}
${view.figures ? html`<p class="note">Figures are this process's, since it started; p50 and p99 are over each handler's last 1024 timed runs (every run at first, then one in eight).</p>` : ''}`
  return layout(context, '/handlers', 'Handlers', body)
}
