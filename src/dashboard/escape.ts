const entities: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/**
 * The one way a value reaches the page: every stored value (payload, id, type,
 * error) is text. HTML's five special characters become entities, and control
 * characters (a terminal escape such as ESC[2J, a NUL, a bidi override) are
 * shown as `\u001b` rather than passed on, so a copy-paste into a terminal stays inert.
 */
export function escapeHtml (value: unknown): string {
  const text = typeof value === 'string' ? value : String(value)
  // eslint-disable-next-line no-control-regex -- control characters are what this matches
  return text.replace(/[&<>"']|[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (character) =>
    entities[character] ?? `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/** A template tag whose interpolations are escaped, unless already `SafeHtml`. */
export function html (strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0] ?? ''
  values.forEach((value, index) => {
    out += render(value) + (strings[index + 1] ?? '')
  })
  return new SafeHtml(out)
}

function render (value: unknown): string {
  if (value instanceof SafeHtml) return value.value
  if (Array.isArray(value)) return value.map(render).join('')
  if (value === undefined || value === null || value === false) return ''
  return escapeHtml(value)
}

/** Markup already escaped: made only by `html`. */
export class SafeHtml {
  constructor (readonly value: string) {}
  toString (): string { return this.value }
}
