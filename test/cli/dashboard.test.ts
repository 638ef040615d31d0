import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import t, { type Test } from 'tap'
import { sqliteInbox } from '../../src/sqlite/inbox.js'
import { tempDir } from '../inbox-contract/scenarios.js'
import { delivery, event, receiver, until } from '../inbox-contract/support.js'
import { cli, ensureBuilt, root, runCli } from './helpers.js'

ensureBuilt()

/** A SQLite file holding one dead event, its receiver closed: what an operator opens. */
async function storeWithDeadEvent (t: Test, id: string): Promise<string> {
  const path = join(tempDir(t), 'inbox.db')
  const webhooks = receiver(sqliteInbox({ path }), { retry: { attempts: 1, minDelayMs: 5, maxDelayMs: 5 } })
  webhooks.on('action.completed', async function award () { throw new Error('<b>down</b>') })
  await webhooks.receive(delivery(event(id)))
  await until(async () => (await webhooks.inbox.outcome?.(id))?.state === 'dead', 'the event to be dead')
  await webhooks.close()
  return path
}

t.test('dashboard --help, and a bad store is a usage error', async (t) => {
  const help = await runCli(['dashboard', '--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, 'Usage: sir-webhooks dashboard --store STORE [--port N]')
  const missing = await runCli(['dashboard', '--store', 'sqlite:/nonexistent/inbox.db'])
  t.equal(missing.code, 2)
  t.match(missing.stderr, 'no SQLite file at')
})

t.test('dashboard --store sqlite:PATH: loopback only, a one-time sign-in link, then pages and a re-drive', async (t) => {
  const path = await storeWithDeadEvent(t, 'evt_cli_dead')
  const child = spawn(process.execPath, [cli, 'dashboard', '--store', `sqlite:${path}`], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const lines = createInterface({ input: child.stdout })
  const signIn = await new Promise<string>((resolve, reject) => {
    lines.on('line', (line) => { if (line.includes('?sign-in=')) resolve(line.trim()) })
    child.on('exit', (code) => { reject(new Error(`the dashboard exited (${String(code)}) before printing its link`)) })
  })
  const url = new URL(signIn)
  t.equal(url.hostname, '127.0.0.1', 'bound to loopback')
  const origin = url.origin
  // The run's own random path: the cookie is scoped to it and named after the port,
  // since a browser sends a host's cookies to every port of it.
  const base = origin + url.pathname.replace(/\/$/, '')
  t.match(url.pathname, /^\/[\w-]{16}\/$/, 'a random path of its own')
  t.equal((await fetch(base + '/')).status, 403, 'no session: refused')
  t.equal((await fetch(base + '/?sign-in=wrong', { redirect: 'manual' })).status, 403, 'a wrong sign-in token')
  t.equal((await fetch(origin + '/?sign-in=' + (url.searchParams.get('sign-in') ?? ''), { redirect: 'manual' })).status, 404, 'the token outside the run\'s path signs nothing in')
  const signedIn = await fetch(signIn, { redirect: 'manual' })
  t.equal(signedIn.status, 303)
  const cookie = (signedIn.headers.get('set-cookie') ?? '').split(';')[0] ?? ''
  t.match(signedIn.headers.get('set-cookie'), /HttpOnly; SameSite=Strict/)
  t.match(signedIn.headers.get('set-cookie'), `Path=${url.pathname.replace(/\/$/, '')}`, 'the cookie goes to this run\'s path only')
  t.match(cookie, new RegExp(`^sir_dashboard_${url.port}=`), 'named after the port')
  t.equal((await fetch(signIn, { redirect: 'manual' })).status, 403, 'the link works once')

  const overview = await (await fetch(base + '/', { headers: { cookie } })).text()
  t.match(overview, '<span data-stat="counts.dead">1</span>')
  t.match(overview, 'No receiver runs in this process')
  const handlers = await (await fetch(base + '/handlers', { headers: { cookie } })).text()
  t.match(handlers, 'No receiver runs in this process', 'the Handlers page says what the store alone cannot show')
  t.notMatch(handlers, 'data-field="runs"', 'and shows no runs it does not have')
  const dead = await (await fetch(base + '/dead', { headers: { cookie } })).text()
  t.match(dead, '&lt;b&gt;down&lt;/b&gt;')
  const token = /action="[^"]*\/actions\/redrive"[\s\S]*?name="token" value="([^"]+)"/.exec(dead)?.[1] ?? ''
  t.not(token, '', 'the page carries its action token')
  const redriven = await fetch(base + '/actions/redrive', {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie, origin, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ id: 'evt_cli_dead', token }).toString()
  })
  t.equal(redriven.status, 303)
  child.kill('SIGINT')
  t.equal(await exited, 0, 'Ctrl-C stops it cleanly')
  const inbox = sqliteInbox({ path })
  t.teardown(() => inbox.close(0))
  t.equal((await inbox.outcome('evt_cli_dead'))?.state, 'pending', 'the store has the event queued again')
})
