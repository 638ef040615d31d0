import { STORE_FORMS } from './inbox-stores.js'

// The flags every subcommand takes, and the exit codes they share.
const storeFlags = `  --store STORE   ${STORE_FORMS}
                  (or set SIR_WEBHOOKS_STORE, which keeps a password out of shell history)
  --queue NAME    the BullMQ queue (default sir-webhooks)
  --prefix P      BullMQ's key prefix (default bull)
  --schema NAME   the Postgres inbox's schema (default sir_webhooks)
  --json          one JSON document on stdout, for scripts`

const exitCodes = 'Exit codes: 0 done; 1 the store failed, or no such (dead) event; 2 bad command line.'

/** Purging is the one command that loses something: said in its help and in the overview. */
const purgeForgets = `Purging an event forgets its id for dedupe: a late redelivery of it is accepted
and its handlers run again. On SQLite and Postgres that is at once; on BullMQ once
its dedupe key has expired too (dedupeSeconds, at least 7 days from the accept).`

export const inboxUsage = `Usage: sir-webhooks inbox <subcommand> --store STORE [--json]

Looks into a durable inbox, and re-drives or purges its events, from any machine
that reaches the store. Receivers may keep running meanwhile.

  inbox stats                  events by state: pending, done, dead
  inbox dead [--limit N]       dead letters, oldest first: id, type, attempts, last error, when
  inbox show ID                one event's record and the event as received
  inbox redrive ID             queue a dead event again, its attempts reset
  inbox redrive --all          every dead event
  inbox purge --before DATE    delete done and dead events that finished before DATE (ISO 8601);
                               pending events are never purged. Asks first in a terminal,
                               needs --yes otherwise; --dry-run only counts

${purgeForgets}

${storeFlags}
  --limit N       at most N dead letters (default 100)

Run "sir-webhooks inbox <subcommand> --help" for one subcommand.

Exit codes: 0 done; 1 the store failed, no such (dead) event, or a purge not
confirmed; 2 bad command line, or a purge with no terminal and no --yes.`

const subcommandUsage: Record<string, string> = {
  stats: `Usage: sir-webhooks inbox stats --store STORE [--json]

How many events the inbox holds in each state: pending (waiting, running or
backing off), done, dead.

${storeFlags}

${exitCodes}`,
  dead: `Usage: sir-webhooks inbox dead --store STORE [--limit N] [--json]

The dead letters, oldest first: id, type, attempts, last error, when each died.
Says so when there are more than --limit.

  --limit N       at most N dead letters (default 100)
${storeFlags}

${exitCodes}`,
  show: `Usage: sir-webhooks inbox show ID --store STORE [--json]

One event's record (state, attempts, last error, when it was received and
finished) and the event as it was received: the body's exact text where the
inbox keeps it, else the event as stored.

${storeFlags}

Exit codes: 0 shown; 1 the store failed, or no event has this id; 2 bad command line.`,
  redrive: `Usage: sir-webhooks inbox redrive (ID | --all) --store STORE [--json]

Queues a dead event again, its attempts reset; a running receiver picks it up.
With --all, every dead event, page by page; one re-driven or purged by someone
else meanwhile is counted as skipped.

  --all           every dead event
${storeFlags}

Exit codes: 0 re-driven; 1 the store failed, or no dead event has this id; 2 bad command line.`,
  purge: `Usage: sir-webhooks inbox purge --before DATE --store STORE [--dry-run | --yes] [--json]

Deletes the done and dead events that finished before DATE. Pending events are
never purged.

${purgeForgets}

  --before DATE   ISO 8601, in the past: 2026-10-01 (midnight UTC) or
                  2026-10-01T12:00:00Z (a time needs Z or an offset such as +02:00)
  --dry-run       count what would be deleted; delete nothing
  --yes, -y       delete without asking. In a terminal the command shows the count
                  and asks first; elsewhere (a script, a pipe) --yes is required
${storeFlags}

Exit codes: 0 purged (or counted); 1 the store failed, or the purge was not
confirmed; 2 bad command line, or no --yes outside a terminal (nothing deleted).`
}

/** The help for `inbox <subcommand> --help`; the overview for anything else. */
export function inboxHelp (positionals: readonly string[]): string {
  const subcommand = positionals[0]
  if (subcommand === undefined || !Object.hasOwn(subcommandUsage, subcommand)) return inboxUsage
  return subcommandUsage[subcommand] ?? inboxUsage
}
