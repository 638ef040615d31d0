import type { EventOutcome } from '../../core/outcome.js'
import { html, type SafeHtml } from '../escape.js'
import { actionForm, formatDate, layout, missingFeature, type PageContext } from './layout.js'

export interface EventsView {
  /** False where the inbox keeps no record of events (the in-memory inbox). */
  history: boolean
  query: string
  /** The event found by `query`; undefined when none was asked for or none exists. */
  outcome: EventOutcome | undefined
  /** Set after an action: what the operator just did. */
  notice?: string
  canRedrive: boolean
  /** The filtered listing: undefined where the inbox cannot list events (no `events()`). */
  listing: Listing | undefined
}

export interface Listing {
  filters: { type: string, state: string, since: string, until: string, handler: string }
  events: EventOutcome[]
  limit: number
  /** Why the filters were not used, in words. */
  problem?: string
  /** The inbox refused the handler filter: it keeps no attempt log. */
  handlerUnsupported?: boolean
}

/** The body as received, pretty-printed when it is JSON; else the envelope the inbox kept. */
function envelopeText (outcome: EventOutcome): string | undefined {
  if (outcome.body !== undefined) {
    try {
      return JSON.stringify(JSON.parse(outcome.body), null, 2)
    } catch {
      return outcome.body
    }
  }
  return outcome.event === undefined ? undefined : JSON.stringify(outcome.event, null, 2)
}

function record (context: PageContext, outcome: EventOutcome, canRedrive: boolean): SafeHtml {
  const envelope = envelopeText(outcome)
  return html`<section class="record">
<dl>
<dt>id</dt><dd data-field="id">${outcome.id}</dd>
<dt>type</dt><dd data-field="type">${outcome.type}</dd>
<dt>state</dt><dd data-field="state" class="state-${outcome.state}">${outcome.state}</dd>
<dt>attempts</dt><dd data-field="attempts">${outcome.attempts}</dd>
<dt>received</dt><dd>${formatDate(outcome.receivedAt)}</dd>
${outcome.finishedAt === undefined ? '' : html`<dt>finished</dt><dd>${formatDate(outcome.finishedAt)}</dd>`}
${outcome.lastError === undefined ? '' : html`<dt>last error</dt><dd data-field="lastError"><code>${outcome.lastError}</code></dd>`}
${outcome.orderingKey === undefined ? '' : html`<dt>ordering key</dt><dd data-field="orderingKey"><code>${outcome.orderingKey}</code></dd>`}
${outcome.stale === undefined ? '' : html`<dt>stale</dt><dd data-field="stale">${staleText(outcome)}</dd>`}
${outcome.skipped === 'stale' ? html`<dt>outcome</dt><dd data-field="skipped">skipped: stale. Not run, a newer event of its key was handled first (ordering.skipStale)</dd>` : ''}
<dt>handlers finished</dt><dd data-field="handled">${handledText(outcome)}</dd>
</dl>
${outcome.state === 'dead' && canRedrive ? actionForm(context, 'redrive', { id: outcome.id }, 'Re-drive this event') : ''}
<h2>Envelope</h2>
${envelope === undefined
    ? missingFeature('The store no longer keeps this event\'s body.')
    : html`<pre data-field="envelope">${envelope}</pre>`}
<h2>Attempts</h2>
${attempts(outcome)}
</section>`
}

/** A skipStale skip ran no handler, so none was told anything. */
function staleText (outcome: EventOutcome): string {
  if (outcome.stale !== true) return 'no'
  return outcome.skipped === 'stale' ? 'yes: a newer event of its key was handled first (not run: ordering.skipStale)' : 'yes: a newer event of its key was handled first; its handlers were told ordering.stale'
}

/** Which handlers finished: what a retry or a re-drive will not run again. */
function handledText (outcome: EventOutcome): string {
  if (outcome.handled !== undefined) return outcome.handled.length > 0 ? outcome.handled.join(', ') : outcome.state === 'pending' ? 'none yet' : 'none'
  if (outcome.state !== 'done') return 'unknown: this store does not record it'
  return outcome.skipped === 'stale' ? 'none: skipped as stale' : 'every handler'
}

/** Each failed or deferred run with its error, where the store keeps them; said plainly where it does not. */
function attempts (outcome: EventOutcome): SafeHtml {
  const log = outcome.attemptLog
  if (log === undefined) return missingFeature('Each attempt\'s error is not kept by this store: the last error is shown above.')
  if (log.length === 0) return html`<p>No failed or deferred run.</p>`
  return html`<table class="attempts"><thead><tr><th>when</th><th>handler</th><th>attempt</th><th>outcome</th><th>error</th></tr></thead>
<tbody>${log.map((record) => html`<tr data-attempt="${record.attempt}">
<td>${formatDate(record.at)}</td><td>${record.handler}</td><td>${record.attempt}</td><td>${record.outcome}</td><td><code>${record.error}</code></td>
</tr>`)}</tbody></table>`
}

function listing (context: PageContext, view: Listing | undefined): SafeHtml {
  if (view === undefined) return html`<h2>Recent events</h2>${missingFeature('This inbox cannot list events by filter; find one by its id above.')}`
  const { filters } = view
  const rows = view.events.map((outcome) => html`<tr>
<td><a href="${context.base}/events?q=${encodeURIComponent(outcome.id)}">${outcome.id}</a></td><td>${outcome.type}</td>
<td class="state-${outcome.state}">${outcome.state}</td><td>${outcome.attempts}</td><td>${formatDate(outcome.receivedAt)}</td>
<td><code>${outcome.lastError ?? ''}</code></td></tr>`)
  return html`<h2>Recent events</h2>
<form method="get" action="${context.base}/events" class="filters">
<label>Type <input name="type" value="${filters.type}" placeholder="any"></label>
<label>State <select name="state">${['', 'pending', 'done', 'dead'].map((state) => html`<option value="${state}"${state === filters.state ? html` selected` : ''}>${state === '' ? 'any' : state}</option>`)}</select></label>
<label>Received since <input type="datetime-local" name="since" value="${filters.since}"></label>
<label>before <input type="datetime-local" name="until" value="${filters.until}"></label>
<label title="events with a failed or deferred run of this handler">Handler <input name="handler" value="${filters.handler}" placeholder="any" autocomplete="off"></label>
<button type="submit">Filter</button>
</form>
${view.problem === undefined ? '' : html`<p class="missing">${view.problem}</p>`}
${view.handlerUnsupported === true
    ? missingFeature('This store does not filter by handler: it keeps no attempt log. Clear the Handler field to list events.')
    : view.events.length === 0
    ? html`<p>No event matches.</p>`
    : html`<table class="events"><thead><tr><th>id</th><th>type</th><th>state</th><th>attempts</th><th>received</th><th>last error</th></tr></thead>
<tbody>${rows}</tbody></table>${view.events.length >= view.limit ? html`<p class="note">The newest ${view.limit} are shown; narrow the filters to see others.</p>` : ''}`}`
}

export function eventsPage (context: PageContext, view: EventsView): string {
  if (!view.history) {
    return layout(context, '/events', 'Events', missingFeature(
      'This inbox keeps no record of events (the in-memory inbox forgets an event once its handlers finish). ' +
      'Use a durable inbox (SQLite, Postgres, BullMQ) to look events up here.'))
  }
  const found = view.query === ''
    ? html``
    : view.outcome === undefined
      ? html`<p class="missing">No event with id <code>${view.query}</code> in this store.</p>`
      : record(context, view.outcome, view.canRedrive)
  const body = html`${view.notice === undefined ? '' : html`<p class="notice" role="status">${view.notice}</p>`}
<form method="get" action="${context.base}/events" class="search">
<label>Event id <input type="search" name="q" value="${view.query}" autocomplete="off" required></label>
<button type="submit">Find</button>
</form>
${found}
${view.query === '' ? listing(context, view.listing) : ''}`
  return layout(context, '/events', 'Events', body)
}
