import { diagnose } from '../testing/diagnose.js'
import { printable } from './printable.js'
import { EXIT_FAILED, EXIT_OK, numberFlag, readBody, requiredFlag, secretFlag, type Command } from './args.js'

export const verifyCommand: Command = {
  name: 'verify',
  summary: 'check a signature, and when it fails say the most likely reason',
  usage: `Usage: sir-webhooks verify --secret SECRET --timestamp T --signature SIG (--body-file FILE | stdin)

Checks a delivery's signature the way the receiver does. When it does not verify,
names the most likely reason: clock skew, a re-serialized body, a trailing newline,
whitespace around the secret, the whsec_ prefix missing or extra, uppercase hex.

  --secret SECRET     the signing secret (or set SIR_WEBHOOK_SECRET)
  --timestamp T       the X-SIR-Timestamp header value
  --signature SIG     the X-SIR-Signature header value (sha256=...)
  --body-file FILE    the raw body, exactly as received (default: read stdin)
  --tolerance S       accepted clock distance in seconds (default 300)
  --at SECONDS        judge the timestamp as of this Unix time (default: now)

Exit codes: 0 verifies; 1 does not verify; 2 bad command line.`,
  options: {
    secret: { type: 'string' },
    timestamp: { type: 'string' },
    signature: { type: 'string' },
    'body-file': { type: 'string' },
    tolerance: { type: 'string' },
    at: { type: 'string' }
  },
  async run (flags, io) {
    const secret = secretFlag(flags, io)
    const timestamp = requiredFlag(flags, 'timestamp')
    const signature = requiredFlag(flags, 'signature')
    const toleranceSeconds = numberFlag(flags, 'tolerance', { min: 1, integer: true })
    const at = numberFlag(flags, 'at', { min: 0 })
    const { body } = await readBody(flags, io)
    const diagnosis = diagnose({
      secret,
      rawBody: body,
      signature,
      timestamp,
      ...(toleranceSeconds === undefined ? {} : { toleranceSeconds }),
      ...(at === undefined ? {} : { now: at * 1000 })
    })
    if (diagnosis.ok) {
      const skew = Math.round(diagnosis.skewSeconds)
      io.stdout.write(`verifies (timestamp ${skew >= 0 ? `${skew} s ago` : `${-skew} s ahead`}, ${body.byteLength} bytes)\n`)
      return EXIT_OK
    }
    const [likeliest, ...others] = diagnosis.reasons
    io.stdout.write('does not verify\n')
    // A reason may quote the header values given: printable() shows their control characters.
    if (likeliest !== undefined) io.stdout.write(printable(`  reason: ${likeliest.code}: ${likeliest.message}`) + '\n')
    for (const other of others) io.stdout.write(printable(`  also:   ${other.code}: ${other.message}`) + '\n')
    return EXIT_FAILED
  }
}
