import type { OutcomeState } from '../../core/outcome.js'
import type { WebhookHealth } from '../../core/health.js'
import type { WebhookStats } from '../../core/stats.js'
import { html } from '../escape.js'
import type { HistoryView } from '../history.js'
import type { Sample } from '../samples.js'
import { layout, missingFeature, type PageContext } from './layout.js'

/** What the overview shows, and what its JSON endpoint answers for the live refresh. */
export interface OverviewData {
  /** Null where no receiver runs in this process (the CLI's dashboard on a store). */
  stats: WebhookStats | null
  /** The receiver's health, else the store's own where it reports one. */
  health: Pick<WebhookHealth, 'reasons'> & { status: string } | null
  /** Events by state in the store; null where the inbox cannot count them. */
  counts: Record<OutcomeState, number> | null
  countsError?: string
  /** How long the oldest pending event has waited, where the inbox can list events. */
  oldestPending?: string
  samples: Sample[]
  /** Since the dashboard started, downsampled; sent with the page and when the refresh asks for it. */
  history?: HistoryView
  sampleIntervalMs: number
}

function stat (path: string, value: number): ReturnType<typeof html> {
  return html`<span data-stat="${path}">${value}</span>`
}

export function overviewPage (context: PageContext, data: OverviewData, chartsAvailable: boolean): string {
  const { stats, health, counts } = data
  const receiver = stats === null
    ? html`<section><h2>Deliveries and handlers</h2>${missingFeature('No receiver runs in this process (a dashboard on the store alone): deliveries, handler runs and their chart are counted by each receiver; see its own dashboard or metrics.')}</section>`
    : html`<section><h2>Deliveries</h2><dl>
<dt>accepted</dt><dd>${stat('stats.deliveries.accepted', stats.deliveries.accepted)}</dd>
<dt>duplicate</dt><dd>${stat('stats.deliveries.duplicate', stats.deliveries.duplicate)}</dd>
<dt>refused</dt><dd>${stat('stats.deliveries.refused', stats.deliveries.refused)}</dd>
</dl></section>
<section><h2><a href="${context.base}/handlers">Handlers</a></h2><dl>
<dt>succeeded</dt><dd>${stat('stats.handlers.succeeded', stats.handlers.succeeded)}</dd>
<dt>retried</dt><dd>${stat('stats.handlers.retried', stats.handlers.retried)}</dd>
<dt>failed</dt><dd>${stat('stats.handlers.failed', stats.handlers.failed)}</dd>
<dt>dead letters</dt><dd>${stat('stats.deadLetters', stats.deadLetters)}</dd>
</dl></section>
<section><h2>Queue (this process)</h2><dl>
<dt>waiting</dt><dd>${stat('stats.queue.waiting', stats.queue.waiting)}</dd>
<dt>running</dt><dd>${stat('stats.queue.running', stats.queue.running)}</dd>
</dl></section>`
  const body = html`
<section class="health" data-health="${health?.status ?? 'unknown'}">
<h2>Health: <span data-stat="health.status">${health?.status ?? 'not reported'}</span></h2>
<ul data-list="health.reasons">${(health?.reasons ?? []).map((reason) => html`<li>${reason}</li>`)}</ul>
</section>
<div class="cards">
${receiver}
<section><h2>Events by state (store)</h2>${counts === null
    ? missingFeature(data.countsError ?? 'This inbox does not count events by state (the in-memory inbox keeps no history).')
    : html`<dl>
<dt>pending</dt><dd>${stat('counts.pending', counts.pending)}</dd>
<dt>done</dt><dd>${stat('counts.done', counts.done)}</dd>
<dt><a href="${context.base}/dead">dead</a></dt><dd>${stat('counts.dead', counts.dead)}</dd>
${data.oldestPending === undefined ? '' : html`<dt>oldest pending</dt><dd><span data-stat="oldestPending">${data.oldestPending}</span></dd>`}
</dl>`}</section>
</div>
${stats === null
    ? ''
    : html`<section><h2>The last hour</h2>
${chartsAvailable
    ? html`<div id="chart" data-interval="${data.sampleIntervalMs}"></div>`
    : missingFeature('Charts need the uplot package next to sir-webhooks: npm install uplot')}
</section>
${chartsAvailable
    ? html`<section><h2>Since start</h2><div id="chart-history"></div>
<p class="note">Since this dashboard started, in <span data-stat="historyBucket"></span> buckets (wider as time goes on, so memory stays bounded); refreshed every half minute.</p></section>`
    : ''}
<section><h2>Refused, by reason</h2>
<table><thead><tr><th>reason</th><th>deliveries</th></tr></thead><tbody>
${Object.entries(stats.deliveries.refusedBy).map(([code, count]) => html`<tr><td>${code}</td><td>${stat(`stats.deliveries.refusedBy.${code}`, count)}</td></tr>`)}
</tbody></table>
<p class="note">Counts are this process's, since it started; refreshed every few seconds. <span data-stat="updated"></span></p>
</section>`}`
  const scripts = chartsAvailable ? ['uPlot.iife.min.js', 'dashboard.js'] : ['dashboard.js']
  return layout(context, '', 'Overview', body, scripts)
}
