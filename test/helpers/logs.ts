import { Writable } from 'node:stream'
import { pino, type Logger } from 'pino'

export interface CapturedLogs {
  logger: Logger
  /** Every line written so far, parsed. */
  entries (): Array<Record<string, unknown>>
  /** Everything written so far, raw, for "never contains" checks. */
  text (): string
}

/** A real pino logger writing into memory, so tests can assert what was logged. */
export function captureLogs (level: pino.Level = 'debug'): CapturedLogs {
  const chunks: string[] = []
  const stream = new Writable({
    write (chunk, _encoding, done) {
      chunks.push(String(chunk))
      done()
    }
  })
  const logger = pino({ level }, stream)
  const text = (): string => chunks.join('')
  return {
    logger,
    text,
    entries: () => text().split('\n').filter((line) => line.length > 0).map((line) => JSON.parse(line) as Record<string, unknown>)
  }
}
