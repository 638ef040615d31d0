import { SIR_USER_AGENT } from '../testing/delivery.js'
import { DEFAULT_TOLERANCE_SECONDS, sign } from '../core/verify-node.js'
import { EXIT_OK, UsageError, numberFlag, readBody, secretFlag, stringFlag, urlFlag, type Command } from './args.js'
import { eventFromFlags, eventOptions, eventTypesUsage, eventUsage } from './event-flags.js'

const DEFAULT_URL = 'http://127.0.0.1:3000/webhooks/sir'

/** POSIX single quoting: safe for any bytes a shell line can hold. */
function shellQuote (text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`
}

export const signCommand: Command = {
  name: 'sign',
  summary: 'print the X-SIR-Timestamp and X-SIR-Signature headers for a body, and a ready curl line',
  usage: `Usage: sir-webhooks sign --secret SECRET (--body-file FILE | --type TYPE [--data JSON] | stdin) [--timestamp T] [--url URL]

Signs a body as SIR Giving does and prints the two headers, then a curl command
that sends it. The body is a file, an event built from --type, or stdin.

  --secret SECRET     the signing secret (or set SIR_WEBHOOK_SECRET)
  --body-file FILE    sign this file's bytes exactly (curl sends it with --data-binary @FILE)
${eventUsage}
  --timestamp T       Unix seconds to sign with (default: now)
  --url URL           the URL in the curl line (default ${DEFAULT_URL})

${eventTypesUsage}

Exit codes: 0 signed; 2 bad command line.`,
  options: {
    secret: { type: 'string' },
    'body-file': { type: 'string' },
    ...eventOptions,
    timestamp: { type: 'string' },
    url: { type: 'string' }
  },
  async run (flags, io) {
    const secret = secretFlag(flags, io)
    const url = urlFlag(flags, DEFAULT_URL)
    const timestamp = numberFlag(flags, 'timestamp', { min: 0, integer: true })
    if (stringFlag(flags, 'type') !== undefined && stringFlag(flags, 'body-file') !== undefined) {
      throw new UsageError('give --type or --body-file, not both')
    }
    let rawBody: Buffer
    let file: string | undefined
    if (stringFlag(flags, 'type') !== undefined) {
      rawBody = Buffer.from(JSON.stringify(await eventFromFlags(flags)))
    } else {
      for (const flag of ['data', 'data-file', 'id']) {
        if (stringFlag(flags, flag) !== undefined) throw new UsageError(`--${flag} needs --type`)
      }
      const read = await readBody(flags, io)
      rawBody = read.body
      file = read.file
    }
    // The bytes are signed as read, never decoded and re-encoded, which could change them.
    const signed = sign({ secret, rawBody, ...(timestamp === undefined ? {} : { timestamp }) })
    const text = rawBody.toString('utf8')
    if (file === undefined && !Buffer.from(text).equals(rawBody)) {
      io.stderr.write('the body is not UTF-8 text, so the inline curl body would differ from the signed bytes: use --body-file for a curl line that sends it exactly\n')
    }
    const data = shellQuote(file === undefined ? text : '@' + file)
    io.stdout.write([
      `X-SIR-Timestamp: ${signed.timestamp}`,
      `X-SIR-Signature: ${signed.signature}`,
      '',
      `curl -sS -X POST ${shellQuote(url)} -H 'Content-Type: application/json' -H ${shellQuote('User-Agent: ' + SIR_USER_AGENT)} -H ${shellQuote('X-SIR-Timestamp: ' + signed.timestamp)} -H ${shellQuote('X-SIR-Signature: ' + signed.signature)} --data-binary ${data}`,
      ''
    ].join('\n'))
    io.stderr.write(`(a receiver accepts this within ${DEFAULT_TOLERANCE_SECONDS} s of the timestamp)\n`)
    return EXIT_OK
  }
}
