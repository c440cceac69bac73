/** One query's answer, as node-postgres gives it. */
export interface PostgresQueryResult {
  rows: Record<string, unknown>[]
  rowCount: number | null
}

/** A connection checked out of a pool, for a transaction. */
export interface PostgresClientLike {
  query(text: string, values?: unknown[]): Promise<PostgresQueryResult>
  release(error?: Error | boolean): void
  on?(event: 'error', listener: (error: Error) => void): unknown
  removeListener?(event: 'error', listener: (error: Error) => void): unknown
}

/**
 * The part of a node-postgres `Pool` the Postgres stores use, written structurally so any compatible pool
 * (or a test double) is accepted.
 *
 * @example
 * import pg from 'pg'
 * const pool: PostgresPoolLike = new pg.Pool({ connectionString: process.env.DATABASE_URL })
 */
export interface PostgresPoolLike {
  query(text: string, values?: unknown[]): Promise<PostgresQueryResult>
  connect(): Promise<PostgresClientLike>
}

/**
 * Runs `work` in one transaction on one client checked out of `pool`: committed when it resolves, rolled
 * back when it throws. A client whose transaction failed goes back with the failure, so the pool discards it
 * rather than hand out a connection in an unknown state.
 *
 * While the client is out, its `error` events are heard and dropped: node-postgres emits one when the
 * connection drops (a terminated backend, a failover, a reset) even while a query is pending, and the pool
 * listens only to its idle clients. Unheard, that event would be thrown as the host's uncaught exception;
 * the pending query rejects with the same failure, and that is where it is handled.
 */
export async function inTransaction<T>(
  pool: PostgresPoolLike,
  work: (client: PostgresClientLike) => Promise<T>,
): Promise<T> {
  const client = await pool.connect()
  client.on?.('error', ignore)
  try {
    await client.query('BEGIN')
    const result = await work(client)
    await client.query('COMMIT')
    client.removeListener?.('error', ignore)
    client.release()
    return result
  } catch (error) {
    // The original failure is what matters; a rollback on a broken connection would only hide it.
    await client.query('ROLLBACK').catch(() => {})
    client.release(error instanceof Error ? error : true)
    throw error
  }
}

function ignore(): void {}
