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

  inbox stats                  events by state, the oldest waiting event's age, what is paused
  inbox dead [--limit N]       dead letters, oldest first: id, type, attempts, last error, when
  inbox show ID                one event's record and the event as received
  inbox redrive ID             queue a dead event again, its attempts reset
  inbox redrive --all          every dead event
  inbox redrive --state dead|done [--type T] [--since DATE] [--until DATE] [--handler NAME]
                               re-drive dead events, or replay done ones (after a handler fix),
                               by filter; counts first, needs --yes for more than one;
                               --dry-run only counts
  inbox pause [--handler NAME] every receiver on the store stops running handlers (or one);
                               deliveries are still accepted
  inbox resume [--handler NAME]
                               the paused runs drain at each handler's pace
  inbox blocked                ordering keys blocked behind a dead letter (ordering.onDeadLetter
                               "block"), each with the event that holds it
  inbox unblock KEY            move a blocked key on: its next event runs on every receiver
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
backing off), done, dead; the age of the oldest waiting event, where the store
can tell; and what is paused, on a store with flow control. Deferrals per
handler are counted in each receiver's process (webhooks.stats().flow), not in
the store.

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
  redrive: `Usage: sir-webhooks inbox redrive ID --store STORE [--json]
       sir-webhooks inbox redrive --all [--dry-run | --yes] --store STORE [--json]
       sir-webhooks inbox redrive --state dead|done [--type T] [--since DATE]
         [--until DATE] [--handler NAME] [--dry-run | --yes] --store STORE [--json]

Queues a dead event again, its attempts reset; a running receiver picks it up.
With --all, every dead event: the same as --state dead with no other filter,
counted first and confirmed (--yes, or a yes in a terminal, for more than one).

With --state, every event that matches the filter, in batches:
  --state dead    dead events are re-driven: attempts reset, and only the
                  handlers that had not succeeded run again
  --state done    done events are replayed (after a handler fix): pending again,
                  their "handled" marks cleared, so their handlers run again;
                  with --handler, only that handler's. On Postgres the handler's
                  writes again commit with its "handled" mark
  --type T        only events of this type
  --since DATE    only events received at or after DATE (ISO 8601)
  --until DATE    only events received before DATE
  --handler NAME  dead: events NAME did not handle; done: replay NAME only
                  (on BullMQ a done job does not record its handlers, so
                  --handler does not narrow done events there: add --type)
  --dry-run       print how many events match; touch nothing
  --yes, -y       go ahead with more than one event. The command counts first;
                  in a terminal it asks, elsewhere more than one needs --yes

  --all           every dead event
${storeFlags}

Exit codes: 0 re-driven (or counted, or none matched); 1 the store failed, no
dead event has this id, the store cannot filter, or not confirmed; 2 bad command
line, or more than one match with no --yes outside a terminal (nothing queued).`,
  pause: `Usage: sir-webhooks inbox pause [--handler NAME] --store STORE [--json]

Pauses every handler, or the one named, on every receiver that uses this store:
they start no run until "inbox resume"; deliveries are still verified, stored
and acknowledged, and health() says paused. Receivers read the pause within
about half a second. Needs a store with flow control.

  --handler NAME  only this handler
${storeFlags}

Exit codes: 0 paused; 1 the store failed, or it has no flow control; 2 bad command line.`,
  resume: `Usage: sir-webhooks inbox resume [--handler NAME] --store STORE [--json]

Undoes "inbox pause": without --handler, every handler, those paused by name
too. The waiting runs drain at each handler's configured pace.

  --handler NAME  only this handler
${storeFlags}

Exit codes: 0 resumed; 1 the store failed, or it has no flow control; 2 bad command line.`,
  blocked: `Usage: sir-webhooks inbox blocked --store STORE [--json]

The ordering keys blocked behind a dead letter (the receivers' ordering option
with onDeadLetter "block"), each with the id of the dead event that holds it and
since when. Later events of a blocked key wait. Re-drive the event to run it in
its place (by createdAt), or "inbox unblock KEY" to move on without it.

${storeFlags}

Exit codes: 0 listed; 1 the store failed, or it keeps no ordering state; 2 bad command line.`,
  unblock: `Usage: sir-webhooks inbox unblock KEY --store STORE [--json]

Moves a blocked ordering key on: every receiver on the store runs its next
event, oldest createdAt first. The dead letter that held it stays, to re-drive
(it then runs flagged stale if newer events of its key were handled) or purge.

${storeFlags}

Exit codes: 0 unblocked; 1 the store failed, it keeps no ordering state, or the
key was not blocked; 2 bad command line.`,
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
