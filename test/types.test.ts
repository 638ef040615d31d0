import { test } from 'tap'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const tsc = fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url))
const fixture = (name: string): string => fileURLToPath(new URL(`./types/fixtures/${name}`, import.meta.url))

// Compiles fixture files the way a user's project would: strict, NodeNext, and
// against the built declarations reached through the package's own exports.
function compile (file: string): Promise<{ code: number, output: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [tsc, '--ignoreConfig', '--noEmit', '--strict', '--target', 'ES2023', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--skipLibCheck', '--types', 'node', file], { cwd: root }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : (error.code as number | undefined) ?? 1, output: stdout + stderr })
    })
  })
}

// Needs dist/ (npm test builds it first through `pretest`).
test('types as a user sees them', async (t) => {
  const good = await compile(fixture('user-app.ts'))
  t.equal(good.code, 0, `the README's code compiles under strict:\n${good.output}`)

  const misspelt = await compile(fixture('misspelt.ts'))
  t.not(misspelt.code, 0, 'a misspelt event type does not compile')
  t.match(misspelt.output, /'"action\.complete"' is not assignable/)

  const wrongData = await compile(fixture('wrong-data.ts'))
  t.not(wrongData.code, 0, 'the documented data shape is enforced')
  t.match(wrongData.output, /Type 'number' is not assignable to type 'string'/)

  const postgres = await compile(fixture('postgres-app.ts'))
  t.equal(postgres.code, 0, `a Postgres inbox's handlers get \`transaction\`, also through Kysely:\n${postgres.output}`)

  const misuse = await compile(fixture('transaction-misuse.ts'))
  t.not(misuse.code, 0, '`transaction` with another inbox does not compile')
  t.match(misuse.output, /Property 'transaction' does not exist on type 'HandlerContext'/)
})
