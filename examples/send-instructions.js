// Shared by the examples: prints how to send the
// running receiver one signed event, with curl or the package's command line.
import { sign } from 'sir-webhooks'

export function printSendInstructions ({ url, secret, developmentSecret }) {
  const body = JSON.stringify({
    id: `evt_${Date.now()}`,
    type: 'action.completed',
    createdAt: new Date().toISOString(),
    data: { actionId: 'act_demo', tokensDistributed: 50 }
  })
  const signed = sign({ secret, rawBody: body })
  const quote = (text) => `'${text.replaceAll("'", "'\\''")}'`
  const usingDevelopmentSecret = secret === developmentSecret
  process.stdout.write(`
SIR Giving webhook receiver listening on ${url}
${usingDevelopmentSecret ? `Using the embedded development secret ${developmentSecret} (set SIR_WEBHOOK_SECRET for real use).\n` : ''}
Send it a signed event (this one is valid for 5 minutes):

  curl -i -X POST ${url} \\
    -H 'content-type: application/json' \\
    -H 'x-sir-timestamp: ${signed.timestamp}' \\
    -H 'x-sir-signature: ${signed.signature}' \\
    --data-binary ${quote(body)}

or sign a fresh one each time with the command line:

  node dist/cli/main.js send --url ${url} --secret ${usingDevelopmentSecret ? secret : '$SIR_WEBHOOK_SECRET'} --type action.completed

Stop with Ctrl+C: accepted events finish before the process exits.
`)
}
