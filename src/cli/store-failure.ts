import { UsageError, stringFlag, type Flags } from './args.js'
import { printable } from './printable.js'

// Postgres's undefined_table: the schema named (or the default) holds no inbox.
const UNDEFINED_TABLE = '42P01'
// Shorter parts are not looked for: replacing every "ab" would garble the message.
const MIN_SECRET_LENGTH = 4

function decoded (text: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

/** What of a store value a driver's message could repeat and must not reach a terminal or a log. */
function secretsOf (spec: string | undefined): string[] {
  if (spec === undefined) return []
  const secrets = [spec]
  if (URL.canParse(spec)) {
    const url = new URL(spec)
    if (url.password !== '') secrets.push(url.password, decoded(url.password))
    if (url.protocol === 'sqlite:') secrets.push(decoded(spec.slice('sqlite:'.length)))
  }
  return secrets.filter((secret) => secret.length >= MIN_SECRET_LENGTH).sort((a, b) => b.length - a.length)
}

/**
 * The error an inbox command reports when the store fails: with what to do for
 * the failures an operator can fix, never with the store value's password or
 * path, and with no control character from the store.
 */
export function storeFailure (error: unknown, spec: string | undefined, flags: Flags): Error {
  if (error instanceof UsageError) return error
  let message = error instanceof Error ? error.message : String(error)
  if ((error as { code?: unknown } | undefined)?.code === UNDEFINED_TABLE) {
    const schema = stringFlag(flags, 'schema')
    const where = schema === undefined ? 'the default schema "sir_webhooks"' : `the schema "${schema}" (--schema)`
    message = `no sir-webhooks inbox tables in ${where} of this database: give the schema the inbox was created with (its \`schema\` option) as --schema NAME, or create the tables with "sir-webhooks migrate --print" (Postgres said: ${message})`
  }
  for (const secret of secretsOf(spec)) message = message.replaceAll(secret, '***')
  return new Error(printable(message))
}
