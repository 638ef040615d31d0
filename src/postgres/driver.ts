import type PgModule from 'pg'

export type Pg = typeof PgModule

/**
 * pg is an optional peer dependency, imported only when a Postgres inbox starts
 * or is queried, so that users of the other inboxes never need it installed.
 */
export async function loadPg (): Promise<Pg> {
  try {
    const imported = await import('pg') as Pg & { default?: Pg }
    return imported.default ?? imported
  } catch (error) {
    throw new Error('sir-webhooks: postgresInbox() needs pg (node-postgres) 8.11 or later; install it with `npm install pg`', { cause: error })
  }
}
