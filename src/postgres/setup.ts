/** One query's answer, as node-postgres gives it. */
export interface PostgresQueryResult {
  rows: Record<string, unknown>[]
  rowCount: number | null
}

/** A connection checked out of a pool; used only for the one-time table setup. */
export interface PostgresClientLike {
  query(text: string, values?: unknown[]): Promise<PostgresQueryResult>
  release(error?: Error | boolean): void
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
 * Creates a store's tables: the schema when missing, then `statements`, in one transaction under an
 * advisory lock named by `lockName`, so instances starting together take turns (concurrent CREATE ... IF
 * NOT EXISTS can still collide on the catalog's unique indexes).
 */
export async function createTables(
  pool: PostgresPoolLike,
  schema: string,
  lockName: string,
  statements: readonly string[],
): Promise<void> {
  const client = await pool.connect()
  let failed: Error | undefined
  try {
    await client.query('BEGIN')
    await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [
      `ai-gateway-middleware:${lockName}`,
    ])
    // CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema exists, so look first.
    const existing = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])
    if (existing.rows.length === 0) await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`)
    for (const statement of statements) await client.query(statement)
    await client.query('COMMIT')
  } catch (error) {
    failed = error instanceof Error ? error : new Error(String(error))
    await client.query('ROLLBACK').catch(() => undefined)
    throw error
  } finally {
    // A connection whose transaction state is unknown is discarded rather than returned to the pool.
    client.release(failed)
  }
}

/**
 * A pool whose queries wait for `setup`, run once; a failed setup (the database down at boot) is retried by
 * the next call rather than remembered. Failures come out as `fail` makes them.
 */
export function readyPool(
  pool: PostgresPoolLike,
  setup: () => Promise<void>,
  fail: (what: string, cause: unknown) => Error,
): { ready(): Promise<void>; query(text: string, values: unknown[]): Promise<PostgresQueryResult> } {
  let done: Promise<void> | undefined
  function ready(): Promise<void> {
    done ??= setup().catch((cause: unknown) => {
      done = undefined
      throw fail('could not create its tables', cause)
    })
    return done
  }
  async function query(text: string, values: unknown[]): Promise<PostgresQueryResult> {
    await ready()
    try {
      return await pool.query(text, values)
    } catch (cause) {
      throw fail('query failed', cause)
    }
  }
  return { ready, query }
}
