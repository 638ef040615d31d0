// The inbox CLI's refusals: usage errors and a store it cannot reach.
import t from 'tap'
import { ensureBuilt, runCli } from './helpers.js'

ensureBuilt()

t.test('usage errors exit 2 and name the problem, without echoing a password', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['inbox', 'stats'], /--store is required \(or set SIR_WEBHOOKS_STORE\)/],
    [['inbox', 'stats', '--store', 'mongodb://admin:hunter2@db/x'], /--store must be sqlite:PATH, redis:/],
    [['inbox', 'stats', '--store', 'sqlite:/nonexistent/inbox.db'], /no SQLite file at the sqlite:PATH given/],
    [['inbox', 'explode', '--store', 'sqlite:x'], /unknown subcommand "explode"/],
    [['inbox'], /which subcommand\?/],
    [['inbox', 'show', '--store', 'sqlite:x'], /inbox show needs an event id/],
    [['inbox', 'redrive', 'evt_1', '--all', '--store', 'sqlite:x'], /an event id or --all, not both/],
    [['inbox', 'purge', '--store', 'sqlite:x'], /inbox purge needs --before DATE/],
    [['inbox', 'purge', '--before', 'last tuesday', '--store', 'sqlite:x'], /--before must be an ISO 8601 date/],
    [['inbox', 'purge', '--before', '0', '--yes', '--store', 'sqlite:x'], /--before must be an ISO 8601 date/],
    [['inbox', 'purge', '--before', '2999-01-01', '--yes', '--store', 'sqlite:x'], /--before must not be in the future/],
    [['inbox', 'dead', '--limit', '0', '--store', 'sqlite:x'], /--limit must be at least 1/],
    [['inbox', 'redrive', '--type', 'action.completed', '--store', 'sqlite:x'], /inbox redrive by filter needs --state dead/],
    [['inbox', 'redrive', '--state', 'pending', '--store', 'sqlite:x'], /--state must be dead or done, got "pending"/],
    [['inbox', 'redrive', 'evt_1', '--state', 'dead', '--store', 'sqlite:x'], /an event id, --all, or a filter/],
    [['inbox', 'redrive', '--all', '--state', 'dead', '--store', 'sqlite:x'], /an event id, --all, or a filter/],
    [['inbox', 'redrive', 'evt_1', '--dry-run', '--store', 'sqlite:x'], /--dry-run and --yes are for a redrive of many/],
    [['inbox', 'redrive', '--state', 'dead', '--since', 'yesterday', '--store', 'sqlite:x'], /--since must be an ISO 8601 date/],
    [['inbox', 'redrive', '--state', 'dead', '--since', '2026-02-01', '--until', '2026-01-01', '--store', 'sqlite:x'], /--since \(2026-02-01T00:00:00.000Z\) must be before --until/],
    [['inbox', 'pause', 'evt_1', '--store', 'sqlite:x'], /inbox pause takes no event id/]
  ]
  for (const [args, message] of cases) {
    const result = await runCli(args)
    t.equal(result.code, 2, args.join(' '))
    t.match(result.stderr, message, args.join(' '))
    t.notMatch(result.stderr, /hunter2/, 'the password is never printed')
  }
})

t.test('a store that cannot be reached exits 1 with the reason', async (t) => {
  const result = await runCli(['inbox', 'stats', '--store', 'redis://127.0.0.1:1'], { timeoutMs: 60_000 })
  t.equal(result.code, 1, result.stderr)
  t.match(result.stderr, /sir-webhooks inbox: .*(ECONNREFUSED|connect)/i)
})
