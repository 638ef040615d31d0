import { html, type SafeHtml } from '../escape.js'

export interface PageContext {
  /** The dashboard's own path, without a trailing slash ('' at the root). */
  base: string
  title: string
  readOnly: boolean
  /** A fresh token for an action, for its form. */
  token: (action: string) => string
}

const NAV = [['', 'Overview'], ['/events', 'Events'], ['/dead', 'Dead letters'], ['/handlers', 'Handlers']] as const

/**
 * The page around every view. No inline script or style anywhere: the
 * Content-Security-Policy allows only the dashboard's own files.
 */
export function layout (context: PageContext, active: string, heading: string, body: SafeHtml, scripts: readonly string[] = []): string {
  const { base } = context
  return '<!doctype html>\n' + html`<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<link rel="icon" href="data:,">
<title>${heading} · ${context.title}</title>
<link rel="stylesheet" href="${base}/assets/dashboard.css">
${scripts.map((name) => html`<script src="${base}/assets/${name}" defer></script>`)}
</head>
<body data-base="${base}">
<header>
<strong>${context.title}</strong>
<nav>${NAV.map(([path, label]) => html`<a href="${base}${path === '' ? '/' : path}"${path === active ? html` aria-current="page"` : ''}>${label}</a>`)}</nav>
${context.readOnly ? html`<span class="badge">read-only</span>` : ''}
</header>
<main>
<h1>${heading}</h1>
${body}
</main>
</body>
</html>
`.value
}

/** A POST form for one action, carrying its token; absent in read-only mode. */
export function actionForm (context: PageContext, action: string, fields: Record<string, string>, label: string, extraClass = ''): SafeHtml {
  if (context.readOnly) return html``
  return html`<form method="post" action="${context.base}/actions/${action}" class="action ${extraClass}">
${Object.entries(fields).map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">`)}
<input type="hidden" name="token" value="${context.token(action)}">
<button type="submit">${label}</button>
</form>`
}

/** What the page says where the inbox lacks a feature, instead of an empty table. */
export function missingFeature (what: string): SafeHtml {
  return html`<p class="missing">${what}</p>`
}

export function formatDate (date: Date | undefined): string {
  return date === undefined ? '' : date.toISOString().replace('.000Z', 'Z')
}
