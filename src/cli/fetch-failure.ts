/**
 * Why a fetch got no answer, in words: undici reports every network failure as
 * "fetch failed" and keeps the reason in `cause` (an `AggregateError` of each
 * address tried, when a name resolves to several).
 */
export function explainFetchFailure (error: unknown, url: string, timeoutMs: number): string {
  const host = new URL(url).host
  if (error instanceof Error && error.name === 'TimeoutError') {
    return `no answer from ${url} within ${timeoutMs} ms (timed out; raise --timeout if the receiver is slow)`
  }
  const cause = causeOf(error)
  switch (cause.code) {
    case 'ECONNREFUSED':
      return `cannot connect to ${url}: connection refused (ECONNREFUSED); is the receiver running and listening on ${host}?`
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot connect to ${url}: DNS lookup of ${new URL(url).hostname} failed (${cause.code}); check the host name`
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return `${url} closed the connection without an answer (${cause.code})`
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return `cannot connect to ${url}: the connection timed out (${cause.code}); check the host and any firewall`
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `cannot connect to ${url}: no route to ${host} (${cause.code})`
  }
  const detail = cause.code ?? cause.message ?? (error instanceof Error ? error.message : String(error))
  return `no answer from ${url}: ${detail}`
}

function causeOf (error: unknown): { code?: string, message?: string } {
  let cause = (error as { cause?: unknown } | undefined)?.cause
  if (cause instanceof AggregateError && cause.errors.length > 0) cause = (cause as { code?: unknown }).code === undefined ? cause.errors[0] : cause
  const { code, message } = (cause ?? {}) as { code?: unknown, message?: unknown }
  const found: { code?: string, message?: string } = {}
  if (typeof code === 'string') found.code = code
  if (typeof message === 'string' && message.length > 0) found.message = message
  return found
}
