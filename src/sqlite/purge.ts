import type { PurgeResult } from '../core/inbox.js'
import type { Statements } from './schema.js'

/**
 * One purge: done events finished before `cutoffs.done`, dead ones before
 * `cutoffs.dead` (none when undefined). `write` runs it in one admin write; a dry
 * run only counts. An ordering key's newest handled createdAt is read from its
 * done events, so it is kept as long as they are: as long as the ids that dedupe.
 */
export async function purgeEvents (sql: Statements, cutoffs: { done: number, dead: number | undefined }, dryRun: boolean, write: <T>(run: () => T) => Promise<T>): Promise<PurgeResult> {
  if (dryRun) {
    const count = (state: 'done' | 'dead', before: number): number => sql.countPurgeable.get({ state, before }) ?? 0
    return { done: count('done', cutoffs.done), dead: cutoffs.dead === undefined ? 0 : count('dead', cutoffs.dead) }
  }
  return await write(() => {
    return {
      done: sql.purge.run({ state: 'done', before: cutoffs.done }).changes,
      dead: cutoffs.dead === undefined ? 0 : sql.purge.run({ state: 'dead', before: cutoffs.dead }).changes
    }
  })
}
