import { randomBytes } from 'node:crypto'
import type Fastify from 'fastify'
import { pino } from 'pino'
import { sirWebhooks, DEFAULT_PATH } from '../fastify/plugin.js'
import { Webhooks } from '../core/webhooks-node.js'
import type { AnyEvent } from '../core/events.js'
import { diagnose } from '../testing/diagnose.js'
import { onceAny } from '../adapter/node-response.js'
import { EXIT_FAILED, EXIT_OK, UsageError, numberFlag, stringFlag, type Command, type Io } from './args.js'
import { printable, printableLines } from './printable.js'

// Refusals where the signature or its timestamp was at fault: worth a diagnosis.
const SIGNATURE_REFUSALS = new Set(['MALFORMED_SIGNATURE', 'SIGNATURE_MISMATCH', 'TIMESTAMP_OUT_OF_RANGE'])

function printEvent (io: Io, event: AnyEvent, attempt: number): void {
  const retry = attempt > 1 ? `  (handler attempt ${attempt})` : ''
  // Every field is the sender's: printable() keeps its control characters off the terminal.
  const data = printableLines(JSON.stringify(event.data, null, 2) ?? 'undefined')
  io.stdout.write(`✓ ${printable(event.type)}  ${printable(event.id)}${event.createdAt === undefined ? '' : `  created ${printable(String(event.createdAt))}`}${retry}\n`)
  io.stdout.write(data.split('\n').map((line) => '    ' + line).join('\n') + '\n')
}

function readAnswer (payload: unknown): { code?: string, message?: string, duplicate?: boolean } {
  if (typeof payload !== 'string') return {}
  try {
    const answer = JSON.parse(payload) as { duplicate?: boolean, error?: { code?: string, message?: string } }
    return { ...answer.error, ...(answer.duplicate === true ? { duplicate: true } : {}) }
  } catch {
    return {}
  }
}

/** `type id` of a verified body, for the duplicate line; the body itself is never printed whole. */
function describeBody (body: unknown): string {
  try {
    const event = JSON.parse(Buffer.isBuffer(body) ? body.toString('utf8') : '') as { id?: unknown, type?: unknown }
    return printable(`${String(event.type)}  ${String(event.id)}`)
  } catch {
    return 'event'
  }
}

function header (value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

export const listenCommand: Command = {
  name: 'listen',
  summary: "run a local receiver (this package's Fastify plugin) and print each event and each refusal",
  usage: `Usage: sir-webhooks listen [--port 3000] [--host 127.0.0.1] [--path ${DEFAULT_PATH}] [--secret SECRET]

Runs a local receiver built on this package's Fastify plugin. Prints each
verified event, pretty, and each refusal with its reason; for a signature
refusal, also the likely cause. Never prints a signature or a given secret.
Stops on Ctrl-C (SIGINT) or SIGTERM.

  --port PORT         port to listen on (default 3000; 0 picks a free one)
  --host HOST         interface to bind (default 127.0.0.1, this machine only)
  --path PATH         the webhook route (default ${DEFAULT_PATH})
  --secret SECRET     the signing secret (or set SIR_WEBHOOK_SECRET; default: a generated one, printed)
  --tolerance S       accepted clock distance in seconds (default 300)

Exit codes: 0 stopped by a signal; 1 could not listen (port in use); 2 bad command line.`,
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    path: { type: 'string' },
    secret: { type: 'string' },
    tolerance: { type: 'string' }
  },
  async run (flags, io) {
    const port = numberFlag(flags, 'port', { min: 0, max: 65535, integer: true }) ?? 3000
    const host = stringFlag(flags, 'host') ?? '127.0.0.1'
    const path = stringFlag(flags, 'path') ?? DEFAULT_PATH
    if (!path.startsWith('/')) throw new UsageError(`--path must start with "/", got ${JSON.stringify(path)}`)
    const toleranceSeconds = numberFlag(flags, 'tolerance', { min: 1, integer: true })
    const fromEnv = io.env.SIR_WEBHOOK_SECRET
    const given = stringFlag(flags, 'secret') ?? (fromEnv === '' ? undefined : fromEnv)
    const secret = given ?? 'whsec_' + randomBytes(24).toString('base64url')
    if (secret.length === 0 || secret.trim() !== secret) throw new UsageError('--secret must be non-empty, without surrounding whitespace')

    const webhooks = new Webhooks({
      secret,
      logger: pino({ level: 'silent' }),
      ...(toleranceSeconds === undefined ? {} : { toleranceSeconds })
    })
    webhooks.onAny((event, context) => printEvent(io, event, context.attempt))

    // Loaded here, not at the top: the other commands must run without Fastify installed.
    let createApp: typeof Fastify
    try {
      createApp = (await import('fastify')).default
    } catch {
      io.stderr.write('sir-webhooks listen: needs fastify, an optional peer dependency: npm install fastify\n')
      return EXIT_FAILED
    }
    const app = createApp({ logger: false })
    // Registered on the parent before the plugin, so the plugin's encapsulated route inherits it.
    app.addHook('onSend', async (request, reply, payload) => {
      if (request.method !== 'POST') return payload
      const status = reply.statusCode
      if (request.routeOptions.url !== path) {
        io.stdout.write(`✗ ${status} POST ${printable(request.url)}: no webhook route here; the route is ${path}\n`)
        return payload
      }
      const answer = readAnswer(payload)
      if (answer.duplicate === true) {
        io.stdout.write(`= ${status} duplicate ${describeBody(request.body)}: already seen; acknowledged, not handled again\n`)
      } else if (answer.code !== undefined) {
        io.stdout.write(printable(`✗ ${status} ${answer.code}: ${answer.message ?? ''}`) + '\n')
        if (SIGNATURE_REFUSALS.has(answer.code) && Buffer.isBuffer(request.body)) {
          const diagnosis = diagnose({
            secret,
            rawBody: request.body,
            signature: header(request.headers['x-sir-signature']),
            timestamp: header(request.headers['x-sir-timestamp']),
            ...(toleranceSeconds === undefined ? {} : { toleranceSeconds })
          })
          if (!diagnosis.ok) for (const reason of diagnosis.reasons) io.stdout.write(printable(`    likely ${reason.code}: ${reason.message}`) + '\n')
        }
      }
      return payload
    })
    await app.register(sirWebhooks, { webhooks, path })

    let address: string
    try {
      address = await app.listen({ port, host })
    } catch (error) {
      io.stderr.write(`sir-webhooks listen: cannot listen on ${host}:${port} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})\n`)
      await app.close()
      return EXIT_FAILED
    }
    io.stdout.write(`listening on ${address}${path}\n`)
    if (given === undefined) io.stdout.write(`secret: ${secret}  (generated; pass --secret to choose one)\n`)

    await new Promise<void>((resolve) => { onceAny(process, ['SIGINT', 'SIGTERM'], resolve) })
    io.stdout.write('stopping: finishing accepted events\n')
    await app.close()
    return EXIT_OK
  }
}
