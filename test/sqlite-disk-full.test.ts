import { spawn } from 'node:child_process'
import { join } from 'node:path'
import t from 'tap'
import { tempDir } from './inbox-contract/scenarios.js'

/**
 * A real full disk, for one process: `ulimit -f` caps the size of the files it
 * may write (the child listens for SIGXFSZ, which would end it otherwise, so a
 * write past the cap fails with EFBIG and SQLite reports SQLITE_IOERR_WRITE or
 * SQLITE_FULL, as on a full disk). Small
 * events fit, a large one does not: its COMMIT fails.
 */
const MARKER = 'MARKER_c41d_do_not_log'

const child = `
  process.on('SIGXFSZ', () => {})
  const { Webhooks, sign } = await import(process.env.SIR_INDEX)
  const { sqliteInbox } = await import(process.env.SIR_MODULE)
  const { pino } = await import('pino')
  const lines = []
  const inbox = sqliteInbox({ path: process.env.SIR_DB, pollIntervalMs: 20 })
  const webhooks = new Webhooks({ secret: 'whsec_full', inbox, logger: pino({ level: 'debug' }, { write (line) { lines.push(line) } }) })
  webhooks.on('action.completed', function record () {})
  const deliver = (id, filler) => {
    const rawBody = Buffer.from(JSON.stringify({ id, type: 'action.completed', createdAt: '2026-05-10T09:12:00Z', data: { note: process.env.SIR_MARKER, filler } }))
    const { timestamp, signature } = sign({ secret: 'whsec_full', rawBody })
    return webhooks.receive({ contentType: 'application/json', signature, timestamp, rawBody })
  }
  // In one turn: one group commit.
  const answers = (await Promise.all([deliver('evt_small_1', ''), deliver('evt_large', 'x'.repeat(800 * 1024)), deliver('evt_small_2', '')])).map((answer) => answer.code)
  const deadline = Date.now() + 10000
  const state = async (id) => (await inbox.outcome(id))?.state
  while (Date.now() < deadline && ((await state('evt_small_1')) !== 'done' || (await state('evt_small_2')) !== 'done')) await new Promise((resolve) => setTimeout(resolve, 20))
  const result = { answers, states: [await state('evt_small_1'), await state('evt_large'), await state('evt_small_2')], health: inbox.health(), logs: lines.join('') }
  await webhooks.close()
  process.stdout.write(JSON.stringify(result) + '\\n')`

t.test('issue 20 items 1 and 14: on a full disk a large event fails alone, its batch-mates commit, and nothing of its body is logged', async (t) => {
  const loaderArgs = process.execArgv.filter((arg) => arg.includes('@tapjs/typescript'))
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SIR_INDEX: new URL('../src/index.ts', import.meta.url).href,
    SIR_MODULE: new URL('../src/sqlite/inbox.ts', import.meta.url).href,
    SIR_DB: join(tempDir(t), 'inbox.db'),
    SIR_MARKER: MARKER
  }
  // Coverage data written at exit would meet the cap too.
  delete env.NODE_V8_COVERAGE
  // 600 blocks: 300 or 600 KB depending on the shell's unit, room for the schema
  // and small events but not for an 800 KB body.
  const process_ = spawn('sh', ['-c', 'ulimit -f 600 && exec "$0" "$@"', process.execPath, ...loaderArgs, '--input-type=module', '-e', child], { env, stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { process_.kill('SIGKILL') })
  let output = ''
  process_.stdout.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  const ended = await new Promise((resolve) => process_.once('exit', (exitCode, signal) => { resolve(exitCode ?? signal) }))
  // Its exit code is not the point: a test runner's hooks in the child may fail at
  // exit under the same file-size cap. The result line is printed before.
  t.not(ended, 'SIGXFSZ', 'the child was not ended by the cap')
  const result = JSON.parse(output.split('\n')[0] ?? '') as { answers: string[], states: Array<string | undefined>, health: { status: string }, logs: string }
  t.same(result.answers, ['ACCEPTED', 'INBOX_UNAVAILABLE', 'ACCEPTED'], 'only the event that does not fit is refused')
  t.same(result.states, ['done', undefined, 'done'], 'its batch-mates were committed and handled; it was not recorded')
  t.match(result.logs, /"code":"SQLITE_(IOERR_WRITE|FULL)"/, 'a real store failure was logged')
  t.match(result.logs, /the SQLite inbox could not record the event/)
  t.notOk(result.logs.includes(MARKER), 'no log line holds the marker')
  t.notOk(result.logs.includes('xxxxxxxx'), 'nor any of the large body')
})
