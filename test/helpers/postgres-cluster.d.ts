export interface PostgresCluster {
  url: string
  port: number
  /** Stops the server and deletes its folder. Safe to call more than once. */
  stop (): void
}

export function findPostgresBin (): string | undefined
export function freePort (): Promise<number>
export function startPostgresCluster (options?: { bin?: string, fsync?: boolean }): Promise<PostgresCluster>
