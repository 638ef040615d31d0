/**
 * Fields of a pg error that name where it happened and what kind it is, never
 * the values involved. The others can quote the data: `detail` ("Failing row
 * contains (…)", "Key (id)=(…) already exists"), `where` ("JSON data, line 1:
 * …"), `hint`, `internalQuery`. A payload fragment reached the logs through
 * `where` before this.
 */
const SAFE_FIELDS = ['code', 'severity', 'routine', 'schema', 'table', 'column', 'constraint', 'dataType'] as const

/**
 * A store error as this inbox logs it and reports it in `health()`: the message
 * and the fields above, nothing else. A data exception's message can end in the
 * value it refused (`invalid input syntax for type integer: "…"`): it is cut at
 * its first colon. Anything not from pg is returned as it is.
 */
export function redactedStoreError (error: unknown): unknown {
  if (!(error instanceof Error)) return error
  const fields = error as Error & Record<string, unknown>
  const code = typeof fields.code === 'string' ? fields.code : undefined
  const fromServer = code !== undefined && /^[0-9A-Z]{5}$/.test(code) && ('severity' in fields || 'routine' in fields || 'detail' in fields || 'where' in fields)
  if (!fromServer) return error
  const message = code.startsWith('22') ? error.message.split(':')[0]! : error.message
  const redacted = new Error(message) as Error & Record<string, unknown>
  redacted.name = error.name
  for (const field of SAFE_FIELDS) {
    if (typeof fields[field] === 'string') redacted[field] = fields[field]
  }
  // The stack of the copy, not the original's, whose first line is the message uncut.
  return redacted
}
