import { sendDelivery } from '../testing/send.js'
import { EXIT_FAILED, EXIT_OK, numberFlag, secretFlag, urlFlag, type Command } from './args.js'
import { eventFromFlags, eventOptions, eventTypesUsage, eventUsage } from './event-flags.js'
import { explainFetchFailure } from './fetch-failure.js'
import { printableLines } from './printable.js'

export const sendCommand: Command = {
  name: 'send',
  summary: 'sign one event and POST it; print the status, latency and response',
  usage: `Usage: sir-webhooks send --url URL --secret SECRET --type TYPE [--data JSON | --data-file FILE] [--id evt_...]

Signs one event as SIR Giving does and POSTs it to URL.

  --url URL           the receiver's webhook route, e.g. http://127.0.0.1:3000/webhooks/sir
  --secret SECRET     the signing secret (or set SIR_WEBHOOK_SECRET)
${eventUsage}
  --skew SECONDS      sign with a clock this many seconds ahead (negative: behind)
  --timeout MS        give up waiting for an answer after MS milliseconds (default 10000)

${eventTypesUsage}

Exit codes: 0 the receiver answered 2xx; 1 it answered otherwise or not at all; 2 bad command line.`,
  options: {
    url: { type: 'string' },
    secret: { type: 'string' },
    ...eventOptions,
    skew: { type: 'string' },
    timeout: { type: 'string' }
  },
  async run (flags, io) {
    const url = urlFlag(flags)
    const secret = secretFlag(flags, io)
    const event = await eventFromFlags(flags)
    const skew = numberFlag(flags, 'skew', { integer: true }) ?? 0
    const timeoutMs = numberFlag(flags, 'timeout', { min: 1, integer: true }) ?? 10_000
    io.stdout.write(`POST ${url}  ${event.type} ${event.id}\n`)
    try {
      const answer = await sendDelivery(url, event, { secret, timestamp: Math.floor(Date.now() / 1000) + skew, timeoutMs })
      // The receiver's answer, whoever it is: its control characters are shown, not obeyed.
      io.stdout.write(`${answer.status} in ${answer.latencyMs.toFixed(1)} ms\n${printableLines(answer.body)}\n`)
      return answer.status >= 200 && answer.status < 300 ? EXIT_OK : EXIT_FAILED
    } catch (error) {
      io.stderr.write(`sir-webhooks send: delivery failed: ${explainFetchFailure(error, url, timeoutMs)}\n`)
      return EXIT_FAILED
    }
  }
}
