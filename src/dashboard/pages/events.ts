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
</dl>
${outcome.state === 'dead' && canRedrive ? actionForm(context, 'redrive', { id: outcome.id }, 'Re-drive this event') : ''}
<h2>Envelope</h2>
${envelope === undefined
    ? missingFeature('The store no longer keeps this event\'s body.')
    : html`<pre data-field="envelope">${envelope}</pre>`}
<p class="note">The store keeps the last error of an event, not every attempt's.</p>
</section>`
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
${found}`
  return layout(context, '/events', 'Events', body)
}
