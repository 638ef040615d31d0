import { schemaName } from '../postgres/options.js'
import { migrationSql, SCHEMA_VERSION } from '../postgres/schema.js'
import { EXIT_OK, UsageError, numberFlag, stringFlag, type Command } from './args.js'

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'print the SQL that creates the Postgres inbox\'s tables, for teams that run migrations themselves',
  usage: `Usage: sir-webhooks migrate --print [--schema NAME] [--from VERSION]

Prints the SQL that creates (or upgrades) the Postgres inbox's tables, in one
transaction. Apply it with your migration tool or psql, then start the inbox
with { migrate: false }. Without that option the inbox applies the same SQL
itself at start, under an advisory lock. This command connects to nothing.

  --print             print the SQL on stdout (required: the command only prints)
  --schema NAME       the schema that holds the tables (default sir_webhooks)
  --from VERSION      the version the tables are at now, to print only the upgrade (default 0: none yet)

This sir-webhooks writes schema version ${SCHEMA_VERSION}.

Exit codes: 0 printed; 2 bad command line.`,
  options: {
    print: { type: 'boolean' },
    schema: { type: 'string' },
    from: { type: 'string' }
  },
  async run (flags, io) {
    if (flags.print !== true) throw new UsageError('--print is required: this command prints the SQL and applies nothing')
    let schema: string
    try {
      schema = schemaName(stringFlag(flags, 'schema'))
    } catch {
      throw new UsageError(`--schema must be a lower-case SQL name of at most 50 characters (letters, digits, _), got ${JSON.stringify(stringFlag(flags, 'schema'))}`)
    }
    const from = numberFlag(flags, 'from', { min: 0, max: SCHEMA_VERSION, integer: true }) ?? 0
    io.stdout.write(migrationSql(schema, from))
    return EXIT_OK
  }
}
