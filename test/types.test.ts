import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { test } from 'tap'

const root = fileURLToPath(new URL('..', import.meta.url))
const tstyche = fileURLToPath(new URL('../node_modules/tstyche/build/bin.js', import.meta.url))

// The type tests are test/types/*.tst.ts, checked by tstyche against the built
// declarations (npm test builds first, through pretest). Run them alone with
// `npx tstyche`. This runs them as part of the suite and fails with their report.
test('the type tests pass (tstyche, test/types/*.tst.ts)', async (t) => {
  const { code, output } = await new Promise<{ code: number, output: string }>((resolve) => {
    execFile(process.execPath, [tstyche], { cwd: root, env: { ...process.env, NO_COLOR: '1' }, timeout: 240_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, output: stdout + stderr })
    })
  })
  t.equal(code, 0, `tstyche exits 0:\n${output}`)
  const assertions = /Assertions:\s+(\d+) passed, (\d+) total/.exec(output)
  t.ok(assertions !== null && Number(assertions[1]) === Number(assertions[2]) && Number(assertions[2]) >= 60, `every assertion ran and passed: ${assertions?.[0] ?? output}`)
})
