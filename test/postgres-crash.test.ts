import { join } from 'node:path'
import pg from 'pg'
import t from 'tap'
import { kill, startReceiver, type ReceiverProcess } from './fixtures/spawn-receiver.js'
import { SenderLog, inParallel, readHandled, resendLikeThePlatform } from './helpers/crash-run.js'
import { freshSchema, postgresForTests } from './helpers/postgres.js'
import { tempDir } from './inbox-contract/scenarios.js'
import { until } from './inbox-contract/support.js'

const postgres = await postgresForTests(t)
if (postgres.url === undefined) {
  t.plan(0, `Postgres crash tests skipped: no PostgreSQL (${postgres.reason})`)
} else {
  const url = postgres.url

  /** Rows per event id in the user's table: what "exactly once" is judged on. */
  async function rowsPerId (db: pg.Pool, table: string): Promise<Map<string, number>> {
    const { rows } = await db.query<{ event_id: string, count: number }>(`SELECT event_id, count(*)::integer AS count FROM ${table} GROUP BY event_id`)
    return new Map(rows.map((row) => [row.event_id, row.count]))
  }

  t.test('postgres: two receivers on one database, each SIGKILLed mid-stream in turn: every event answered 2xx has exactly one row, refused ones none', async (t) => {
    const db = new pg.Pool({ connectionString: url, max: 2 })
    t.teardown(() => db.end())
    const schema = freshSchema('sir_crash')
    // The user's table: no unique constraint, so a handler that ran twice would leave two rows.
    const table = `${schema}_credits`
    await db.query(`CREATE TABLE ${table} (event_id text NOT NULL, attempt integer NOT NULL, pid integer NOT NULL)`)
    t.teardown(() => db.query(`DROP TABLE IF EXISTS ${table}; DROP SCHEMA IF EXISTS ${schema} CASCADE`))
    const handledFile = join(tempDir(t), 'handled.txt')
    const env = {
      SIR_STORE: 'postgres',
      SIR_POSTGRES_URL: url,
      SIR_SCHEMA: schema,
      SIR_EFFECTS_TABLE: table,
      SIR_SECRET: 'whsec_inbox_contract',
      SIR_HANDLED: handledFile,
      SIR_HANDLER_MS: '120',
      SIR_CONCURRENCY: '4',
      // Small, so that bursts are partly answered 503 and those ids must stay unhandled.
      SIR_MAX_QUEUE: '6'
    }
    const ids = Array.from({ length: 120 }, (_, index) => `evt_${index}`)
    const log = new SenderLog()
    const receivers: ReceiverProcess[] = [await startReceiver(env), await startReceiver(env)]
    t.teardown(async () => { for (const receiver of receivers) await kill(receiver, 'SIGKILL') })
    const killed: ReceiverProcess[] = []
    // Ids alternate between the two receivers; at 40 and 80 answers, one of them is
    // killed (the first, then the second) and a new one takes its place on the same database.
    await inParallel(ids, 8, async (id) => {
      const index = Number(id.slice(4))
      const target = receivers[index % 2]!
      await log.send(target.url, id)
      if (log.answers === 40 || log.answers === 80) {
        const slot = log.answers === 40 ? 0 : 1
        const doomed = receivers[slot]!
        doomed.child.kill('SIGKILL')
        killed.push(doomed)
        await kill(doomed, 'SIGKILL')
        receivers[slot] = await startReceiver(env)
      }
    })
    t.equal(killed.length, 2, 'both receivers were killed once')
    t.ok(log.acked.size > 0 && log.refused.size > 0, `some events were accepted and some refused 503 (${log.acked.size} acked, ${log.refused.size} refused, ${log.unanswered.size} unanswered)`)
    const cutOff = killed.flatMap((doomed) => doomed.started.filter((id) => !readHandled(handledFile).some((line) => line.id === id && line.pid === doomed.child.pid)))
    t.ok(cutOff.length > 0, 'some handlers were running when a receiver was killed')

    const abandoned = await resendLikeThePlatform(log, receivers[0]!.url, 'whsec_unused')
    t.ok(abandoned.size > 0, 'some ids stayed refused')
    await until(async () => {
      const rows = await rowsPerId(db, table)
      return [...log.acked].every((id) => rows.has(id))
    }, 'every acknowledged event to have its row', 30_000)
    // Everything accepted has run to the end: no attempt is left that could add a row later.
    await until(async () => (await db.query(`SELECT count(*)::integer AS n FROM ${schema}.events WHERE state <> 'done'`)).rows[0].n === 0, 'every event to be done', 30_000)

    const rows = await rowsPerId(db, table)
    t.same([...log.acked].filter((id) => rows.get(id) !== 1), [], 'every event answered 2xx has exactly one row (0 lost, 0 doubled)')
    t.same([...log.refused].filter((id) => rows.has(id)), [], 'no event only refused has a row')
    t.same([...rows.keys()].filter((id) => !log.acked.has(id)), [], 'every row belongs to an acknowledged event')
    t.ok(cutOff.every((id) => rows.get(id) === 1), 'the events cut off by the kills were resumed, once')
    const { rows: resumed } = await db.query<{ n: number }>(`SELECT count(*)::integer AS n FROM ${table} WHERE attempt >= 2`)
    t.ok(resumed[0]!.n > 0, 'resumed handlers were told it is a later attempt')
    // The handled file is written after the commit-less wait, outside the database: it
    // may list an event twice (at-least-once), which is what the docs say of such effects.
    const lines = readHandled(handledFile)
    t.ok([...log.acked].every((id) => lines.some((line) => line.id === id)), 'the file effect happened for every event too')
  })
}
