import { test } from 'tap'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/edge/${name}`, import.meta.url))

function run (conditions: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const args = [...conditions.flatMap((condition) => ['--conditions', condition]), '--import', fixture('refuse-node-builtins.mjs'), fixture('receiver.mjs')]
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd: fileURLToPath(new URL('..', import.meta.url)), timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : (typeof error.code === 'number' ? error.code : 1), stdout, stderr })
    })
  })
}

// Loads the built package the way Vercel Edge or a Worker resolves it (the
// edge-light / browser export conditions), with every Node built-in import
// refused and no setImmediate: the receiver and the fetch adapter must work on
// Web APIs alone. Needs dist/ (npm test builds it first).
test('the package root and fetch adapter run with no Node built-ins', async (t) => {
  const result = await run(['edge-light', 'browser'])
  t.equal(result.code, 0, `the fixture ran:\n${result.stderr}`)
  const seen = JSON.parse(result.stdout) as Record<string, { status: number, body: { error?: { code: string } } } | unknown>
  t.equal(seen.nodeVerifyExported, false, 'the Web root leaves out the node:crypto verify')
  t.match(seen.accepted, { status: 200, body: { received: true } })
  t.match(seen.duplicate, { status: 200, body: { duplicate: true } })
  t.match(seen.wrongSecret, { status: 401, body: { error: { code: 'SIGNATURE_MISMATCH' } } })
  t.match(seen.malformed, { status: 401, body: { error: { code: 'MALFORMED_SIGNATURE' } } })
  t.match(seen.notJson, { status: 400, body: { error: { code: 'INVALID_JSON' } } })
  t.match(seen.afterClose, { status: 503, body: { error: { code: 'CLOSING' } } })
  t.same(seen.handled, [{ id: 'evt_edge_1', attempt: 1 }], 'the handler ran once, after the 2xx')
  t.same(seen.logReasons, ['SIGNATURE_MISMATCH', 'MALFORMED_SIGNATURE', 'INVALID_JSON', 'CLOSING'])
})

test('the guard works: the Node root under the same hook fails on node:crypto', async (t) => {
  const result = await run([])
  t.not(result.code, 0)
  t.match(result.stderr, /edge runtime: no Node built-in modules, but something imported/)
})
